"""Write SD 2.x and SDXL models as original-layout (LDM) single files, beside SD 1.x's writer.

``craftlora.models.ldm_layout`` maps the UNet and VAE and SD 1.x's CLIP text encoder; this module
adds the parts the other families differ in:

- SD 2.x: the text encoder is OpenCLIP ViT-H, stored under ``cond_stage_model.model.`` in
  OpenCLIP's own names (``transformer.resblocks.{i}.attn.in_proj_weight`` holds q, k and v
  stacked; ``ln_1`` / ``ln_2``, ``mlp.c_fc`` / ``mlp.c_proj``, ``positional_embedding``,
  ``ln_final``);
- SDXL: the UNet's size/crop embedding ``add_embedding.linear_{1,2}`` is LDM's
  ``label_emb.0.{0,2}``; the first text encoder (CLIP ViT-L, transformers names) sits under
  ``conditioner.embedders.0.transformer.``, the second (OpenCLIP bigG, with its projection stored
  as the matrix ``text_projection`` that multiplies from the right) under
  ``conditioner.embedders.1.model.``.

Real checkpoints and diffusers' ``from_single_file`` use these names; the tests write tiny
models this way and read them back through the loader.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from craftlora.models.ldm_layout import (
    CLIP_PREFIX,
    UNET_PREFIX,
    VAE_PREFIX,
    clip_to_ldm,
    unet_to_ldm,
    vae_to_ldm,
)

SD2_TEXT_PREFIX = "cond_stage_model.model."
SDXL_TEXT_PREFIX = "conditioner.embedders.0.transformer.text_model."
SDXL_TEXT2_PREFIX = "conditioner.embedders.1.model."
FAMILIES = ("sd15", "sd2", "sdxl")

_OPEN_CLIP_TOP = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
}
_OPEN_CLIP_LAYER = {
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}
_LABEL_EMB = {"add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}


def open_clip_to_ldm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers CLIP text model (with or without projection) in OpenCLIP names."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, t in state_dict.items():
        if key.endswith("position_ids"):
            continue
        key = key.removeprefix("text_model.")
        if key == "text_projection.weight":
            out["text_projection"] = t.T
            continue
        if key in _OPEN_CLIP_TOP:
            out[_OPEN_CLIP_TOP[key]] = t
            continue
        if not key.startswith("encoder.layers."):
            raise NotImplementedError(f"text encoder key {key!r} has no OpenCLIP counterpart")
        idx, _, rest = key.removeprefix("encoder.layers.").partition(".")
        module, _, param = rest.rpartition(".")
        if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            qkv.setdefault((int(idx), param), {})[module[-6]] = t
            continue
        if module not in _OPEN_CLIP_LAYER:
            raise NotImplementedError(f"text encoder key {key!r} has no OpenCLIP counterpart")
        out[f"transformer.resblocks.{idx}.{_OPEN_CLIP_LAYER[module]}.{param}"] = t
    for (idx, param), parts in qkv.items():
        out[f"transformer.resblocks.{idx}.attn.in_proj_{param}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def sdxl_unet_to_ldm(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any]
                     ) -> dict[str, torch.Tensor]:
    """An SDXL UNet (``addition_embed_type="text_time"``) in LDM names (no prefix)."""
    if config.get("addition_embed_type") != "text_time":
        raise ValueError("not an SDXL UNet (addition_embed_type is not 'text_time')")
    rest = {k: t for k, t in state_dict.items() if not k.startswith("add_embedding.")}
    out = unet_to_ldm(rest, {**dict(config), "addition_embed_type": None})
    for key, t in state_dict.items():
        if key.startswith("add_embedding."):
            module, _, param = key.rpartition(".")
            out[f"{_LABEL_EMB[module]}.{param}"] = t
    return out


def family_to_ldm(family: str, unet: Any, vae: Any, text_encoder: Any,
                  text_encoder_2: Any = None) -> dict[str, torch.Tensor]:
    """The whole model of ``family`` (``sd15``, ``sd2``, ``sdxl``) as one LDM state dict (on the
    modules' device: meta tensors give the full-size layout without memory)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")
    if (family == "sdxl") != (text_encoder_2 is not None):
        raise ValueError("SDXL has two text encoders, SD 1.x / 2.x one")
    te = text_encoder.state_dict()
    if family == "sdxl":
        unet_sd = sdxl_unet_to_ldm(unet.state_dict(), unet.config)
        texts = [(SDXL_TEXT_PREFIX, clip_to_ldm(te)),
                 (SDXL_TEXT2_PREFIX, open_clip_to_ldm(text_encoder_2.state_dict()))]
    else:
        unet_sd = unet_to_ldm(unet.state_dict(), unet.config)
        texts = [(SD2_TEXT_PREFIX, open_clip_to_ldm(te)) if family == "sd2"
                 else (CLIP_PREFIX, clip_to_ldm(te))]
    parts = [(UNET_PREFIX, unet_sd), (VAE_PREFIX, vae_to_ldm(vae.state_dict(), vae.config)),
             *texts]
    return {prefix + k: t.detach().contiguous() for prefix, sd in parts for k, t in sd.items()}


def save_family_checkpoint(family: str, unet: Any, vae: Any, text_encoder: Any,
                           path: str | os.PathLike[str], *, text_encoder_2: Any = None) -> Path:
    """Write ``family``'s model as an A1111/ComfyUI single ``.safetensors`` file (atomically)."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: single-file checkpoints are written as .safetensors")
    sd = {k: t.cpu() for k, t in family_to_ldm(family, unet, vae, text_encoder,
                                               text_encoder_2).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(sd, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)
    return path
