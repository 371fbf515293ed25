"""Stage functions behind ``craftlora lora``: describe a LoRA file against a base model, and
convert it between the kohya form (sd-scripts' names or diffusers-path names) and the
diffusers/peft form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch

from craftlora.models.comfy_keys import comfy_unloaded
from craftlora.models.kohya_meta import base_model_version
from craftlora.models.kohya_names import Layout, is_sdxl_unet, sd_scripts_modules
from craftlora.models.lora import (
    LoraFormatError,
    is_kohya,
    peft_to_kohya,
    read_lora_file,
    save_diffusers_lora,
    save_kohya_lora,
)
from craftlora.models.lora_import import lora_file_parts

Form = Literal["kohya", "peft"]
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# metadata the writer derives again from the weights and the base model
_DERIVED = ("ss_network_", "ss_v2", "ss_base_model_version", "craftlora_network_parts",
            "lora_adapter_metadata", "format")


def _spelling(sd: Mapping[str, torch.Tensor]) -> str:
    unet = [k for k in sd if k.startswith("lora_unet_")]
    ldm = [k for k in unet if any(b in k for b in ("_input_blocks_", "_middle_block_",
                                                      "_output_blocks_"))]
    if not unet:
        return "no UNet modules"
    return "LDM paths" if len(ldm) == len(unet) else "diffusers paths" if not ldm else "mixed"


def describe_lora(path: str | Path, models: Mapping[str, torch.nn.Module],
                  prediction_type: str = "epsilon") -> dict[str, Any]:
    """What a LoRA file holds and whether it fits ``models``: form, UNet spelling, per-part
    module counts, ranks and alphas, its base-model label against the model's, and the keys
    ComfyUI would leave unloaded. Raises :class:`LoraFormatError` when it does not load."""
    sd, meta = read_lora_file(path)
    parts = lora_file_parts(path, models)
    unet_config = models["unet"].config
    kohya = sd if is_kohya(sd) else peft_to_kohya(parts, unet_config=unet_config)
    summary = {}
    for part, (psd, cfg) in parts.items():
        convs = sum(1 for k, t in psd.items() if ".lora_A." in k and t.ndim == 4
                    and tuple(t.shape[2:]) != (1, 1))
        ranks = {int(t.shape[0]) for k, t in psd.items() if ".lora_A." in k}
        alphas = {float(cfg["lora_alpha"]), *map(float, (cfg.get("alpha_pattern") or {}).values())}
        summary[part] = {"modules": len(cfg["target_modules"]), "conv_3x3": convs,
                         "ranks": sorted(ranks), "alphas": sorted(alphas)}
    model_base = base_model_version(unet_config, prediction_type)
    sd_scripts = {part: len(sd_scripts_modules(m, conv=part == "unet"))
                  for part, m in models.items()}
    return {
        "file": str(path), "form": "kohya" if is_kohya(sd) else "peft",
        "unet_spelling": _spelling(sd) if is_kohya(sd) else "peft module paths",
        "dtypes": sorted({str(t.dtype).removeprefix("torch.") for t in sd.values()}),
        "has_alpha": any(k.endswith(".alpha") for k in sd) if is_kohya(sd) else None,
        "parts": summary, "sd_scripts_full_target_counts": sd_scripts,
        "file_base_model": meta.get("ss_base_model_version"), "model_base": model_base,
        "base_matches": meta.get("ss_base_model_version") in (None, model_base),
        "comfyui_unloaded": comfy_unloaded(kohya, models),
    }


def convert_lora(path: str | Path, out: str | Path, models: Mapping[str, torch.nn.Module], *,
                 form: Form = "kohya", layout: Layout = "sd-scripts", precision: str = "fp32",
                 prediction_type: str = "epsilon") -> Path:
    """Rewrite a LoRA file (either form, any accepted spelling) for ``models``: the kohya form
    in ``layout`` names at ``precision`` (its other ``ss_*`` metadata kept), or the peft form
    (``out`` is then a folder holding ``pytorch_lora_weights.safetensors``). Lossless at fp32."""
    if precision not in DTYPES:
        raise LoraFormatError(f"unknown precision {precision!r}; expected {sorted(DTYPES)}")
    _, meta = read_lora_file(path)
    parts = lora_file_parts(path, models)
    out = Path(out)
    if Path(path).resolve() == out.resolve():
        raise LoraFormatError(f"{out}: the converted file would overwrite its source")
    if form == "peft":
        dtype = DTYPES[precision]
        parts = {p: ({k: v.to(dtype) for k, v in sd.items()}, cfg)
                 for p, (sd, cfg) in parts.items()}
        out.mkdir(parents=True, exist_ok=True)
        return save_diffusers_lora(out, parts, sdxl=is_sdxl_unet(models["unet"].config))
    if form != "kohya":
        raise LoraFormatError(f"unknown LoRA form {form!r}; expected kohya or peft")
    kept = {k: v for k, v in meta.items() if not k.startswith(_DERIVED)}
    kept["craftlora_converted_from"] = json.dumps({"file": Path(path).name, "layout": layout})
    return save_kohya_lora(out, parts, unet_config=models["unet"].config,
                           prediction_type=prediction_type, layout=layout,
                           dtype=DTYPES[precision], metadata=kept)


__all__ = ["DTYPES", "Form", "convert_lora", "describe_lora"]
