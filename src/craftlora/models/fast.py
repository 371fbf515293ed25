"""Inference speed levers for a diffusers pipeline's UNet.

| lever | what it does |
|---|---|
| ``fused_qkv`` | one ``to_qkv`` matmul per self-attention, not three (diffusers' fusion) |
| ``channels_last`` | NHWC memory format for the UNet's convolutions |
| ``bf16`` | UNet weights in bfloat16, its forward under autocast, the output back in the |
| | caller's dtype (AMX / AVX-512-BF16 CPUs and GPUs; the VAE and text encoders keep theirs) |

The first two are exact up to float rounding; ``bf16`` rounds the UNet's arithmetic to 8
mantissa bits, so its images differ from fp32's by about as much as another seed's do at the
pixel level but not in distribution (``bench.real_scale`` measures the FD between the sets).

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

LEVERS = ("fused_qkv", "channels_last", "bf16")


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


def _bf16_forward(unet: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Cast ``unet`` to bfloat16 and run its forward under autocast; returns the original
    tensors so that ``_restore`` puts back the exact weights."""
    original = dict(unet.state_dict())
    dtype = next(unet.parameters()).dtype
    forward = unet.forward

    def bf16_forward(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(next(unet.parameters()).device.type, dtype=torch.bfloat16):
            out = forward(*args, **kwargs)
        if isinstance(out, tuple):
            return (out[0].to(dtype), *out[1:])
        out.sample = out.sample.to(dtype)
        return out

    unet.to(torch.bfloat16)
    unet.forward = bf16_forward
    return original


def _restore(unet: torch.nn.Module, original: dict[str, torch.Tensor]) -> None:
    """Put the kept float32 tensors back in place (no third copy of the weights is made);
    a floating buffer outside the state dict goes back to float32, as ``unet.to`` would."""
    del unet.forward  # the class's forward again
    for name, t in (*unet.named_parameters(), *unet.named_buffers()):
        if name in original:
            t.data = original[name]
        elif t.is_floating_point():
            t.data = t.data.float()


@contextmanager
def levers_applied(pipe: Any, levers: Sequence[str]) -> Iterator[dict[str, str]]:
    """Apply ``levers`` to ``pipe.unet`` inside the block; yields lever → "on" or the reason
    it was skipped."""
    unet = pipe.unet
    record: dict[str, str] = {}
    fused = False
    original: dict[str, torch.Tensor] | None = None
    for lever in check_levers(levers):
        if lever == "fused_qkv":
            if _has_adapters(unet):
                record[lever] = "skipped: the UNet has LoRA adapters"
                continue
            unet.fuse_qkv_projections()
            fused = True
        elif lever == "channels_last":
            unet.to(memory_format=torch.channels_last)
        elif lever == "bf16":
            if next(unet.parameters()).dtype != torch.float32:
                record[lever] = "skipped: the UNet is not in float32"
                continue
            original = _bf16_forward(unet)
        record[lever] = "on"
    try:
        yield record
    finally:
        if original is not None:
            _restore(unet, original)
        if fused:
            _unfuse(unet)
        if record.get("channels_last") == "on":
            unet.to(memory_format=torch.contiguous_format)
