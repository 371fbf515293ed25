"""AdamW with torch's fused kernel wherever the parameters allow it.

torch's default AdamW on CPU loops over the parameters one tensor at a time; the fused kernel
updates them all in one pass (3–4× faster for the hundreds of small LoRA and classifier
tensors, a few percent of a training step). The update is the same up to float rounding.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

FUSED_DEVICES = ("cpu", "cuda")


def _tensors(params: Iterable[Any]) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for p in params:
        out.extend(p["params"] if isinstance(p, dict) else [p])
    return out


def adamw(params: Iterable[Any], **kwargs: Any) -> torch.optim.AdamW:
    """``torch.optim.AdamW(params, **kwargs)``, fused when every tensor is a floating-point
    tensor on one CPU or CUDA device."""
    params = list(params)
    tensors = _tensors(params)
    devices = {t.device for t in tensors}
    fused = (len(devices) == 1 and next(iter(devices)).type in FUSED_DEVICES
             and all(t.is_floating_point() for t in tensors))
    return torch.optim.AdamW(params, fused=fused or None, **kwargs)
