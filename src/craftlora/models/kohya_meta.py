"""The ``ss_*`` metadata of a kohya LoRA file, in sd-scripts' vocabulary.

Written from the tensors and the base model, so the labels cannot drift from the weights:

- ``ss_network_module``: ``networks.lora`` (sd-scripts' LoRA; 3×3 conv layers are its
  ``conv_dim`` variant, not a LyCORIS module).
- ``ss_network_dim`` / ``ss_network_alpha``: the rank and alpha of the Linear and 1×1 conv
  modules when every such module of every part (UNet and text encoders) shares them; otherwise
  ``Dynamic``, the word sd-scripts' own ``resize_lora`` writes for mixed ranks.
- ``ss_network_args``: JSON ``{"conv_dim": …, "conv_alpha": …}`` when 3×3 conv modules are present
  (sd-scripts' ``--network_args``), each ``Dynamic`` when they differ.
- ``craftlora_network_parts``: JSON, per part, its module count and the distinct ranks and alphas
  of its linear and conv modules, so that nothing hides behind ``Dynamic``.
- ``ss_network_train_unet_only`` / ``ss_network_train_text_encoder_only``: which parts exist.
- ``ss_v2`` and ``ss_base_model_version`` (``sd_v1``, ``sd_v2``, ``sd_v2_768_v``,
  ``sdxl_base_v1-0``) from the UNet config and the prediction type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import torch

from craftlora.models.kohya_names import READ_PREFIXES, is_sdxl_unet

NETWORK_MODULE = "networks.lora"


def base_model_version(unet_config: Mapping[str, Any], prediction_type: str) -> str:
    """sd-scripts' ``ss_base_model_version``. SD 2.x is recognised by its 1024-wide OpenCLIP
    context (SD 1.x: 768, SDXL: 2048 plus the ``text_time`` embedding), 768-v by v-prediction."""
    if is_sdxl_unet(unet_config):
        return "sdxl_base_v1-0"
    if unet_config.get("cross_attention_dim") == 1024:
        return "sd_v2_768_v" if prediction_type == "v_prediction" else "sd_v2"
    return "sd_v1"


def family_metadata(unet_config: Mapping[str, Any], prediction_type: str) -> dict[str, str]:
    version = base_model_version(unet_config, prediction_type)
    return {"ss_v2": str(version.startswith("sd_v2")), "ss_base_model_version": version}


def _modules(tensors: Mapping[str, torch.Tensor]) -> dict[str, tuple[str, int, float, bool]]:
    """kohya module name → (part, rank, alpha, is 3×3 conv)."""
    out = {}
    for key, down in tensors.items():
        if not key.endswith(".lora_down.weight"):
            continue
        name = key.removesuffix(".lora_down.weight")
        part = READ_PREFIXES["_".join(name.split("_")[:2])]
        rank = int(down.shape[0])
        alpha = tensors.get(f"{name}.alpha")
        conv = down.ndim == 4 and tuple(down.shape[2:]) != (1, 1)
        out[name] = (part, rank, float(alpha) if alpha is not None else float(rank), conv)
    return out


def _one(values: list[Any], fmt: type) -> str:
    return str(fmt(values[0])) if len(set(values)) == 1 else "Dynamic"


def network_metadata(tensors: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """``ss_network_*`` and ``craftlora_network_parts`` for a kohya state dict (see module doc)."""
    mods = _modules(tensors)
    linear = [m for m in mods.values() if not m[3]]
    conv = [m for m in mods.values() if m[3]]
    parts: dict[str, dict[str, Any]] = {}
    for part, rank, alpha, is_conv in mods.values():
        p = parts.setdefault(part, {"modules": 0})
        p["modules"] += 1
        kind = "conv" if is_conv else "linear"
        p.setdefault(f"{kind}_dims", set()).add(rank)
        p.setdefault(f"{kind}_alphas", set()).add(alpha)
    meta = {
        "ss_network_module": NETWORK_MODULE,
        "ss_network_dim": _one([m[1] for m in linear], int) if linear else "None",
        "ss_network_alpha": _one([m[2] for m in linear], float) if linear else "None",
        "ss_network_train_unet_only": str(set(parts) == {"unet"}),
        "ss_network_train_text_encoder_only": str("unet" not in parts),
        "craftlora_network_parts": json.dumps(
            {part: {k: sorted(v) if isinstance(v, set) else v for k, v in p.items()}
             for part, p in sorted(parts.items())}, sort_keys=True),
    }
    if conv:
        meta["ss_network_args"] = json.dumps({"conv_dim": _one([m[1] for m in conv], int),
                                              "conv_alpha": _one([m[2] for m in conv], float)})
    return meta


__all__ = ["NETWORK_MODULE", "base_model_version", "family_metadata", "network_metadata"]
