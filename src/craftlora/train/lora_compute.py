"""Training-time LoRA compute: fold the adapter into the frozen weight where that is cheaper.

peft computes ``y = x Wᵀ + s·(x Aᵀ) Bᵀ``. Per step with ``N`` tokens that costs
``2·N·dᵢ·dₒ + 3·N·r·(dᵢ + dₒ)`` multiply-adds (forward, input gradient, the two adapter
gradients). Folding first, ``W' = W + s·B A`` and ``y = x W'ᵀ``, costs ``3·N·dᵢ·dₒ + 3·r·dᵢ·dₒ``:
one more full-size product (the gradient of ``W'``) but none of the thin ones. For large ``N`` it
is cheaper whenever ``dᵢ·dₒ < 3·r·(dᵢ + dₒ)``, i.e. when the rank is large next to the layer
width (rank 32 on the mini base's 64- and 128-wide attention; rank 64 on SD's 320-wide blocks).
The result and the adapter gradients are the same up to float rounding; the module tree, the
state dict and the saved files do not change, only which arithmetic runs.

A ``k×k`` convolution is the same sum per output pixel with ``dᵢ = cᵢ·k²`` and ``dₒ = cₒ``
(peft's ``lora_A`` is a ``k×k`` conv to ``r`` channels, ``lora_B`` a ``1×1`` conv back), so the
same rule decides and the folded kernel is ``W + s·B A`` reshaped to ``(cₒ, cᵢ, k, k)``.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F


def fold_is_cheaper(d_in: int, d_out: int, rank: int) -> bool:
    """Whether the folded form needs fewer multiply-adds per token (the large-``N`` limit)."""
    return d_in * d_out < 3 * rank * (d_in + d_out)


def _foldable(layer: torch.nn.Module) -> str | None:
    """The single active adapter of a plain peft ``lora.Linear``/``Conv2d`` to fold, else None."""
    from peft.tuners.lora import Conv2d as LoraConv2d
    from peft.tuners.lora import Linear as LoraLinear

    if not isinstance(layer, LoraLinear | LoraConv2d) or layer.merged or layer.disable_adapters:
        return None
    active = [a for a in layer.active_adapters if a in layer.lora_A]
    if len(active) != 1:
        return None
    name = active[0]
    if name in getattr(layer, "lora_variant", {}) or layer.lora_bias.get(name, False):
        return None
    if not isinstance(layer.lora_dropout[name], torch.nn.Identity):
        return None  # dropout acts on the adapter's input only: no folded equivalent
    base = layer.base_layer
    if isinstance(layer, LoraLinear):
        ok = isinstance(base, torch.nn.Linear) and not layer.fan_in_fan_out
    else:
        ok = (type(base) is torch.nn.Conv2d and base.groups == 1 and base.dilation == (1, 1)
              and isinstance(base.padding, tuple) and base.padding_mode == "zeros")
    return name if ok else None


def _folded_forward(layer: torch.nn.Module, name: str):
    lora_a, lora_b = layer.lora_A[name], layer.lora_B[name]
    base = layer.base_layer
    conv = isinstance(base, torch.nn.Conv2d)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        a = lora_a.weight
        delta = lora_b.weight.flatten(1) @ a.flatten(1)
        w = base.weight.to(a.dtype) + delta.view(base.weight.shape) * self.scaling[name]
        autocast = torch.is_autocast_enabled(x.device.type)  # if so, the op casts
        bias, dtype = base.bias, x.dtype
        if not autocast:
            # no autocast to cast for us (fp16 on a CPU, say): work in the adapter's dtype,
            # answer in the input's, as peft does
            x = x.to(w.dtype)
            bias = None if bias is None else bias.to(w.dtype)
        y = F.conv2d(x, w, bias, base.stride, base.padding) if conv else F.linear(x, w, bias)
        return y if autocast else y.to(dtype)

    return types.MethodType(forward, layer)


def _fold_dims(layer: torch.nn.Module) -> tuple[int, int]:
    """(dᵢ, dₒ) of the fold rule: a conv's input is its channels times its kernel area."""
    w = layer.base_layer.weight
    return w[0].numel(), w.shape[0]


@contextmanager
def folded_lora(*models: torch.nn.Module) -> Iterator[int]:
    """Within the block, LoRA layers of ``models`` run folded where :func:`fold_is_cheaper`.

    Yields how many layers were switched; restores peft's own forward on exit.
    """
    switched: list[torch.nn.Module] = []
    try:
        for model in models:
            for layer in model.modules():
                name = _foldable(layer)
                if name is None:
                    continue
                if fold_is_cheaper(*_fold_dims(layer), layer.r[name]):
                    layer.forward = _folded_forward(layer, name)
                    switched.append(layer)
        yield len(switched)
    finally:
        for layer in switched:
            del layer.forward
