"""Read LoRA files as the ecosystem writes them and load them onto a model as peft adapters.

Accepted:

- **kohya files** (sd-scripts, the GUIs built on it, A1111/ComfyUI trainers, craftlora's export):
  UNet modules under their diffusers path or their LDM path (SDXL's ``input_blocks`` /
  ``middle_block`` / ``output_blocks``, and the same for SD 1.x/2.x), text encoders as
  ``lora_te_`` / ``lora_te1_`` / ``lora_te2_``; fp16, bf16 or fp32; with or without ``.alpha``
  (missing: alpha = rank, as sd-scripts reads it); 3×3 conv layers (LoCon / sd-scripts'
  ``conv_dim``), their down weight ``[r, in, k, k]`` and up weight ``[out, r, 1, 1]``;
- **the diffusers/peft form** (``unet.<module>.lora_A.weight``), with or without adapter metadata.

Refused with the file and the reason: LyCORIS LoHa / LoKr / Tucker tensors, DoRA scales, a module
the model does not have, a down or up weight whose shape does not fit its layer.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from craftlora.models.kohya_names import base_layers, name_lookup
from craftlora.models.lora import (
    LoraFormatError,
    is_kohya,
    peft_parts,
    read_lora_file,
    save_diffusers_lora,
)

Parts = dict[str, tuple[dict[str, torch.Tensor], dict[str, Any]]]
_KINDS = {"lora_down.weight": "down", "lora_up.weight": "up", "alpha": "alpha"}
_UNSUPPORTED = {"hada_": "LyCORIS LoHa", "lokr_": "LyCORIS LoKr", "lora_mid": "LyCORIS Tucker",
                "dora_scale": "DoRA"}


def _fit(t: torch.Tensor, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """``t`` as ``shape``; a 1×1 conv weight and a Linear weight convert into each other."""
    if tuple(t.shape) == shape:
        return t
    if t.numel() == torch.Size(shape).numel() and t.shape[:2] == shape[:2]:
        return t.reshape(shape)
    raise LoraFormatError(f"{what}: shape {tuple(t.shape)} does not fit the layer ({shape})")


def _shapes(layer: torch.nn.Module, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if isinstance(layer, torch.nn.Conv2d):
        return (rank, layer.in_channels, *layer.kernel_size), (layer.out_channels, rank, 1, 1)
    return (rank, layer.in_features), (layer.out_features, rank)


def _group(sd: Mapping[str, torch.Tensor], source: str) -> dict[str, dict[str, torch.Tensor]]:
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, t in sd.items():
        name, _, kind = key.partition(".")
        if kind not in _KINDS:
            what = next((v for k, v in _UNSUPPORTED.items() if k in kind), "an unknown kind")
            raise LoraFormatError(f"{source}: key {key!r} is {what}; only LoRA and LoCon "
                                  "(lora_down / lora_up / alpha) load")
        grouped.setdefault(name, {})[_KINDS[kind]] = t
    return grouped


def kohya_to_peft(sd: Mapping[str, torch.Tensor], models: Mapping[str, torch.nn.Module], *,
                  source: str = "LoRA") -> Parts:
    """``{part: (peft_sd, adapter_cfg)}`` from kohya tensors, each module put on its layer in
    ``models`` (``{"unet": …, "text_encoder": …, "text_encoder_2": …}``); weights in the layer's
    dtype, ranks and alphas per module (the common one as ``r`` / ``lora_alpha``, the others
    in ``rank_pattern`` / ``alpha_pattern``)."""
    lookup = name_lookup(models)
    layers = {part: base_layers(m) for part, m in models.items()}
    found: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor, float]]] = {}
    for name, d in _group(sd, source).items():
        if name not in lookup:
            raise LoraFormatError(f"{source}: module {name!r} matches no layer of the "
                                  f"{' / '.join(models)} (a LoRA for another model family?)")
        if "down" not in d or "up" not in d:
            raise LoraFormatError(f"{source}: module {name!r} needs both lora_down and lora_up")
        part, module = lookup[name]
        layer = layers[part][module]
        rank = int(d["down"].shape[0])
        down_shape, up_shape = _shapes(layer, rank)
        dtype = layer.weight.dtype
        down = _fit(d["down"], down_shape, f"{source}: {name}.lora_down").to(dtype)
        up = _fit(d["up"], up_shape, f"{source}: {name}.lora_up").to(dtype)
        alpha = float(d["alpha"]) if "alpha" in d else float(rank)
        if module in found.get(part, {}):
            raise LoraFormatError(f"{source}: layer {part}.{module} appears under two names")
        found.setdefault(part, {})[module] = (down, up, alpha)
    if not found:
        raise LoraFormatError(f"{source}: no LoRA modules")
    return {part: _peft_part(mods) for part, mods in found.items()}


def _peft_part(mods: Mapping[str, tuple[torch.Tensor, torch.Tensor, float]]
               ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    ranks = {m: int(down.shape[0]) for m, (down, _, _) in mods.items()}
    alphas = {m: a for m, (_, _, a) in mods.items()}
    r0 = Counter(ranks.values()).most_common(1)[0][0]
    a0 = Counter(alphas.values()).most_common(1)[0][0]
    sd: dict[str, torch.Tensor] = {}
    for m, (down, up, _) in mods.items():
        sd[f"{m}.lora_A.weight"], sd[f"{m}.lora_B.weight"] = down, up
    return sd, {
        "r": r0, "lora_alpha": a0, "target_modules": sorted(mods),
        "rank_pattern": {m: r for m, r in ranks.items() if r != r0},
        "alpha_pattern": {m: a for m, a in alphas.items() if a != a0},
    }


def lora_file_parts(path: str | Path, models: Mapping[str, torch.nn.Module]) -> Parts:
    """The peft parts of a LoRA file in either form (see module doc)."""
    sd, meta = read_lora_file(path)
    if is_kohya(sd):
        return kohya_to_peft(sd, models, source=str(path))
    if sd and all(re.fullmatch(r"[a-z_2]+\..+\.lora_[AB](\.default)?\.weight", k) for k in sd):
        parts = peft_parts(sd, meta)
        unknown = sorted(set(parts) - set(models))
        if unknown:
            raise LoraFormatError(f"{path}: parts {unknown} are not in this model "
                                  f"({', '.join(models)})")
        return parts
    raise LoraFormatError(f"{path}: neither kohya (lora_unet_… / lora_te…) nor diffusers/peft "
                          f"(unet.….lora_A.weight) keys, e.g. {next(iter(sd), 'no tensors')!r}")


def add_adapter_parts(models: Mapping[str, torch.nn.Module], parts: Parts,
                      adapter_name: str = "default") -> None:
    """Attach each part as a peft adapter named ``adapter_name`` and load its weights exactly."""
    from peft import LoraConfig
    from peft.utils import set_peft_model_state_dict

    for part, (sd, cfg) in parts.items():
        lora = LoraConfig(
            r=cfg["r"], lora_alpha=cfg["lora_alpha"], target_modules=list(cfg["target_modules"]),
            rank_pattern=dict(cfg.get("rank_pattern") or {}),
            alpha_pattern=dict(cfg.get("alpha_pattern") or {}), init_lora_weights=False)
        model = models[part]
        with warnings.catch_warnings():  # several adapters on one model is what we want
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            model.add_adapter(lora, adapter_name=adapter_name)
        result = set_peft_model_state_dict(model, sd, adapter_name=adapter_name)
        stray = [k for k in result.unexpected_keys if "lora_" in k]
        if stray:
            raise LoraFormatError(f"{part}: adapter {adapter_name!r} left {len(stray)} tensors "
                                  f"unloaded, e.g. {stray[0]!r}")


def load_lora(models: Mapping[str, torch.nn.Module], path: str | Path,
              adapter_name: str = "default") -> Parts:
    """Load a LoRA file of either form onto ``models`` as the peft adapter ``adapter_name``."""
    parts = lora_file_parts(path, models)
    add_adapter_parts(models, parts, adapter_name)
    return parts


def pipeline_models(pipe: Any) -> dict[str, torch.nn.Module]:
    """The LoRA-loadable parts of a diffusers pipeline (or of craftlora's ``Components``)."""
    names = ("unet", "text_encoder", "text_encoder_2")
    return {n: getattr(pipe, n) for n in names if getattr(pipe, n, None) is not None}


def kohya_file_to_diffusers(path: Path, out_dir: Path,
                            models: Mapping[str, torch.nn.Module]) -> Path:
    """Convert a kohya file to the diffusers/peft form (true alphas kept in adapter metadata)."""
    sd, _ = read_lora_file(path)
    return save_diffusers_lora(out_dir, kohya_to_peft(sd, models, source=str(path)))


__all__ = ["add_adapter_parts", "kohya_file_to_diffusers", "kohya_to_peft", "load_lora",
           "lora_file_parts", "pipeline_models"]
