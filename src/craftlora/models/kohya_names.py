"""sd-scripts' LoRA module names on the diffusers module tree, both ways.

sd-scripts names a LoRA module ``<prefix>_<module path with "." → "_">`` where the prefix is
``lora_unet``, ``lora_te`` (SD 1.x/2.x) or ``lora_te1`` / ``lora_te2`` (SDXL), and the module path
is the one in the network sd-scripts trains on:

- SD 1.x / 2.x: its UNet copies diffusers' module names (``down_blocks.0.attentions.0.proj_in``);
- SDXL: its UNet copies the original SGM/LDM names (``input_blocks.4.1.proj_in``,
  ``middle_block.1``, ``output_blocks.0.1``, resnets as ``in_layers.2`` / ``emb_layers.1`` /
  ``out_layers.3`` / ``skip_connection``, the downsampler ``op``), the layout of the single-file
  checkpoint (:mod:`craftlora.models.ldm_layout` holds that mapping);
- text encoders: the transformers CLIP path from ``text_model.`` on.

It puts a LoRA on every Linear / Conv2d inside a ``Transformer2DModel`` (and, with ``conv_dim``,
inside ``ResnetBlock2D`` / ``Downsample2D`` / ``Upsample2D``) and inside CLIP's attention and MLP.
Files in the wild carry either UNet spelling for either family, so reading accepts both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import torch

from craftlora.models.ldm_layout import unet_to_ldm

Layout = Literal["sd-scripts", "diffusers"]
LAYOUTS: tuple[str, ...] = ("sd-scripts", "diffusers")
UNET_PREFIX = "lora_unet"
# prefixes written per part: SD 1.x/2.x, SDXL; reading accepts lora_te and lora_te1 for either
TEXT_PREFIX = {"text_encoder": ("lora_te", "lora_te1"), "text_encoder_2": ("lora_te2", "lora_te2")}
READ_PREFIXES = {"lora_unet": "unet", "lora_te": "text_encoder", "lora_te1": "text_encoder",
                 "lora_te2": "text_encoder_2"}

SD_SCRIPTS_BLOCKS = ("Transformer2DModel", "CLIPAttention", "CLIPMLP")
SD_SCRIPTS_CONV_BLOCKS = ("ResnetBlock2D", "Downsample2D", "Upsample2D")
_SDXL_TOP = {"add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}


def is_sdxl_unet(unet_config: Mapping[str, Any]) -> bool:
    return unet_config.get("addition_embed_type") == "text_time"


def base_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The Linear / Conv2d layers of ``model`` by their own path, seen through peft's wrappers
    (a wrapped ``to_q`` is ``to_q`` again, its ``lora_A`` / ``lora_B`` are not layers)."""
    out: dict[str, torch.nn.Module] = {}
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear | torch.nn.Conv2d):
            continue
        path = name.split(".")
        if any(p.startswith("lora_") for p in path):
            continue
        if path[-1] == "base_layer":
            path = path[:-1]
        if "base_layer" not in path:
            out[".".join(path)] = mod
    return out


def sd_scripts_modules(model: torch.nn.Module, *, conv: bool = False) -> list[str]:
    """The modules sd-scripts' ``networks.lora`` wraps in ``model`` (UNet or CLIP text encoder):
    every Linear / Conv2d inside its target blocks; with ``conv`` (its ``conv_dim``) also the
    resnets' and samplers' layers."""
    blocks = SD_SCRIPTS_BLOCKS + (SD_SCRIPTS_CONV_BLOCKS if conv else ())
    inside = [name + "." for name, mod in model.named_modules()
              if type(mod).__name__ in blocks]
    return [n for n in base_layers(model) if any(n.startswith(b) for b in inside)]


def unet_ldm_paths(unet_config: Mapping[str, Any], modules: Iterable[str]) -> dict[str, str]:
    """diffusers UNet module path → the SGM/LDM path of the same layer."""
    modules = list(modules)
    cfg = {**unet_config, "addition_embed_type": None}  # SDXL's label_emb: mapped here
    plain = [m for m in modules if m not in _SDXL_TOP]
    ldm = unet_to_ldm({f"{m}.weight": torch.empty(0) for m in plain}, cfg)
    out = {m: _SDXL_TOP[m] for m in modules if m in _SDXL_TOP}
    out.update({m: k.removesuffix(".weight") for m, k in zip(plain, ldm, strict=True)})
    return out


def _text_path(module: str) -> str:
    return module if module.startswith("text_model.") else "text_model." + module


def kohya_names(part: str, modules: Iterable[str], *, unet_config: Mapping[str, Any],
                layout: Layout = "sd-scripts") -> dict[str, str]:
    """Module path → kohya module name, as sd-scripts (or, ``layout="diffusers"``, with the
    diffusers UNet path for SDXL too) names it."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown LoRA layout {layout!r}; expected one of {LAYOUTS}")
    modules = list(modules)
    sdxl = is_sdxl_unet(unet_config)
    if part == "unet":
        paths = (unet_ldm_paths(unet_config, modules) if sdxl and layout == "sd-scripts"
                 else {m: m for m in modules})
        prefix = UNET_PREFIX
    elif part in TEXT_PREFIX:
        paths = {m: _text_path(m) for m in modules}
        prefix = TEXT_PREFIX[part][int(sdxl)]
    else:
        raise ValueError(f"unknown LoRA part {part!r}; expected unet, {', '.join(TEXT_PREFIX)}")
    return {m: f"{prefix}_{p.replace('.', '_')}" for m, p in paths.items()}


def name_lookup(models: Mapping[str, torch.nn.Module]) -> dict[str, tuple[str, str]]:
    """Every kohya module name a file may use for a Linear/Conv2d of ``models`` → (part, path):
    the UNet under its diffusers and its LDM path, text encoders with or without ``text_model``.
    """
    out: dict[str, tuple[str, str]] = {}
    for part, model in models.items():
        layers = list(base_layers(model))
        if part == "unet":
            spellings = [{m: m for m in layers}, _ldm_or_none(model.config, layers)]
        else:
            spellings = [{m: _text_path(m) for m in layers},
                         {m: m.removeprefix("text_model.") for m in layers}]
        prefixes = [p for p, q in READ_PREFIXES.items() if q == part]
        for paths in spellings:
            for m, p in paths.items():
                for prefix in prefixes:
                    out.setdefault(f"{prefix}_{p.replace('.', '_')}", (part, m))
    return out


def _ldm_or_none(unet_config: Mapping[str, Any], layers: list[str]) -> dict[str, str]:
    paths = {}
    for m in layers:
        # a layer with no LDM counterpart keeps its diffusers spelling only
        with contextlib.suppress(NotImplementedError):
            paths.update(unet_ldm_paths(unet_config, [m]))
    return paths


__all__ = [
    "LAYOUTS", "Layout", "READ_PREFIXES", "SD_SCRIPTS_BLOCKS", "SD_SCRIPTS_CONV_BLOCKS",
    "base_layers", "is_sdxl_unet", "kohya_names", "name_lookup", "sd_scripts_modules",
    "unet_ldm_paths",
]
