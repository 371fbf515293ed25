"""Inference speed levers for a diffusers pipeline's UNet, each exact up to float rounding.

| lever | what it does |
|---|---|
| ``fused_qkv`` | one ``to_qkv`` matmul per self-attention, not three (diffusers' fusion) |
| ``channels_last`` | NHWC memory format for the UNet's convolutions |

``levers_applied(pipe, levers)`` applies them for the length of a ``with`` block and undoes
them after, so a caller's pipeline comes back as it went in. QKV fusion is skipped (and the
returned record says why) when the UNet carries LoRA adapters: a fused projection would bypass
the adapters on ``to_q``/``to_k``/``to_v``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

LEVERS = ("fused_qkv", "channels_last")


def check_levers(levers: Sequence[str]) -> list[str]:
    """The levers in canonical order; an unknown name is an error naming the known ones."""
    unknown = [x for x in levers if x not in LEVERS]
    if unknown:
        raise ValueError(f"unknown speed lever(s) {unknown}; known: {list(LEVERS)}")
    return [x for x in LEVERS if x in levers]


def _has_adapters(module: torch.nn.Module) -> bool:
    return any("lora_" in name for name, _ in module.named_modules())


def _unfuse(unet: torch.nn.Module) -> None:
    """Restore the attention processors and drop the fused copies, so the module tree and
    state dict are the ones that went in."""
    unet.unfuse_qkv_projections()
    for module in unet.modules():
        for name in ("to_qkv", "to_kv"):
            if name in module._modules:
                del module._modules[name]
        if hasattr(module, "fused_projections"):
            module.fused_projections = False


@contextmanager
def levers_applied(pipe: Any, levers: Sequence[str]) -> Iterator[dict[str, str]]:
    """Apply ``levers`` to ``pipe.unet`` inside the block; yields lever → "on" or the reason
    it was skipped."""
    unet = pipe.unet
    record: dict[str, str] = {}
    fused = False
    for lever in check_levers(levers):
        if lever == "fused_qkv":
            if _has_adapters(unet):
                record[lever] = "skipped: the UNet has LoRA adapters"
                continue
            unet.fuse_qkv_projections()
            fused = True
        elif lever == "channels_last":
            unet.to(memory_format=torch.channels_last)
        record[lever] = "on"
    try:
        yield record
    finally:
        if fused:
            _unfuse(unet)
        if record.get("channels_last") == "on":
            unet.to(memory_format=torch.contiguous_format)
