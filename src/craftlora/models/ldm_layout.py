"""Write SD 1.x / 2.x models in the original LDM single-file layout that A1111 and ComfyUI load.

One ``.safetensors`` holds every component under its CompVis prefix:

- UNet → ``model.diffusion_model.`` (``input_blocks`` / ``middle_block`` / ``output_blocks``);
- VAE → ``first_stage_model.`` (``encoder.down.{i}.block.{j}``, ``mid.block_1``, ...);
- CLIP text encoder → ``cond_stage_model.transformer.text_model.``.

The mapping is the inverse of the one diffusers' ``from_single_file`` reads, derived from the
layout of the original ``ldm`` modules: a UNet down block ``b`` with ``L`` layers per block fills
input blocks ``1 + b·(L+1) … b·(L+1) + L`` (the last of them is its downsampler), an up block
fills ``L + 1`` output blocks, and the VAE decoder numbers its up blocks in reverse. Keys with no
LDM counterpart (SDXL's ``add_embedding``, class embeddings, OpenCLIP text encoders) raise
``NotImplementedError`` rather than being dropped silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer.text_model."

_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_VAE_TOP = {
    "encoder.conv_in": "encoder.conv_in",
    "encoder.conv_out": "encoder.conv_out",
    "encoder.conv_norm_out": "encoder.norm_out",
    "decoder.conv_in": "decoder.conv_in",
    "decoder.conv_out": "decoder.conv_out",
    "decoder.conv_norm_out": "decoder.norm_out",
    "quant_conv": "quant_conv",
    "post_quant_conv": "post_quant_conv",
}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _split_param(key: str) -> tuple[str, str]:
    """``'a.b.weight'`` → ``('a.b', 'weight')``."""
    module, _, param = key.rpartition(".")
    return module, param


def _resnet_part(rest: str, table: Mapping[str, str]) -> str:
    module, param = _split_param(rest)
    if module not in table:
        raise NotImplementedError(f"resnet sub-module {module!r} has no LDM name")
    return f"{table[module]}.{param}"


def _layers_per_block(config: Mapping[str, Any]) -> int:
    lpb = config["layers_per_block"]
    if not isinstance(lpb, int):
        raise NotImplementedError("LDM layout for a per-block layers_per_block list")
    return lpb


#: SDXL's added-condition embedding (diffusers) → its LDM name; ``unet_to_ldm`` does not map it.
SDXL_LABEL_EMB = {"add_embedding.linear_1": "label_emb.0.0",
                  "add_embedding.linear_2": "label_emb.0.2"}


def unet_to_ldm(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any]
                ) -> dict[str, torch.Tensor]:
    """A diffusers ``UNet2DConditionModel`` state dict in LDM names (no prefix)."""
    for key in ("class_embed_type", "addition_embed_type", "num_class_embeds"):
        if config.get(key):
            raise NotImplementedError(f"LDM layout for a UNet with {key}={config[key]!r}")
    lpb = _layers_per_block(config)
    up_attn = ["CrossAttn" in t for t in config["up_block_types"]]
    out: dict[str, torch.Tensor] = {}
    for key, t in state_dict.items():
        module, param = _split_param(key)
        if module in _UNET_TOP:
            out[f"{_UNET_TOP[module]}.{param}"] = t
            continue
        m = re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key)
        if m:
            b, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
            idx = 1 + b * (lpb + 1) + j
            if kind == "resnets":
                out[f"input_blocks.{idx}.0.{_resnet_part(rest, _UNET_RESNET)}"] = t
            else:
                out[f"input_blocks.{idx}.1.{rest}"] = t
            continue
        m = re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", key)
        if m:
            out[f"input_blocks.{1 + int(m[1]) * (lpb + 1) + lpb}.0.op.{m[2]}"] = t
            continue
        m = re.fullmatch(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", key)
        if m:
            kind, j, rest = m[1], int(m[2]), m[3]
            if kind == "resnets":
                out[f"middle_block.{2 * j}.{_resnet_part(rest, _UNET_RESNET)}"] = t
            else:
                out[f"middle_block.{2 * j + 1}.{rest}"] = t
            continue
        m = re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key)
        if m:
            b, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
            idx = b * (lpb + 1) + j
            if kind == "resnets":
                out[f"output_blocks.{idx}.0.{_resnet_part(rest, _UNET_RESNET)}"] = t
            else:
                out[f"output_blocks.{idx}.1.{rest}"] = t
            continue
        m = re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", key)
        if m:
            b = int(m[1])
            slot = 2 if up_attn[b] else 1
            out[f"output_blocks.{b * (lpb + 1) + lpb}.{slot}.conv.{m[2]}"] = t
            continue
        raise NotImplementedError(f"UNet key {key!r} has no LDM counterpart")
    return out


def vae_to_ldm(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any]
               ) -> dict[str, torch.Tensor]:
    """A diffusers ``AutoencoderKL`` state dict in LDM names (no prefix).

    Mid-block attention projections become 1×1 convolutions, as in the original model.
    """
    n_up = len(config["up_block_types"])
    out: dict[str, torch.Tensor] = {}
    for key, t in state_dict.items():
        module, param = _split_param(key)
        if module in _VAE_TOP:
            out[f"{_VAE_TOP[module]}.{param}"] = t
            continue
        m = re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            sub = "nin_shortcut" if m[3] == "conv_shortcut" else m[3]
            out[f"encoder.down.{m[1]}.block.{m[2]}.{sub}.{m[4]}"] = t
            continue
        m = re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", key)
        if m:
            out[f"encoder.down.{m[1]}.downsample.conv.{m[2]}"] = t
            continue
        m = re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            sub = "nin_shortcut" if m[3] == "conv_shortcut" else m[3]
            out[f"decoder.up.{n_up - 1 - int(m[1])}.block.{m[2]}.{sub}.{m[4]}"] = t
            continue
        m = re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", key)
        if m:
            out[f"decoder.up.{n_up - 1 - int(m[1])}.upsample.conv.{m[2]}"] = t
            continue
        m = re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            sub = "nin_shortcut" if m[3] == "conv_shortcut" else m[3]
            out[f"{m[1]}.mid.block_{int(m[2]) + 1}.{sub}.{m[4]}"] = t
            continue
        m = re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(\w+)", key)
        if m and m[2] in _VAE_ATTN:
            if m[3] == "weight" and t.ndim == 2:
                t = t[:, :, None, None]
            out[f"{m[1]}.mid.attn_1.{_VAE_ATTN[m[2]]}.{m[3]}"] = t
            continue
        raise NotImplementedError(f"VAE key {key!r} has no LDM counterpart")
    return out


def clip_to_ldm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers ``CLIPTextModel`` state dict in SD 1.x names (no prefix).

    transformers ≥ 5.6 flattens ``CLIPTextModel`` (no ``text_model.`` level); the LDM file has it.
    """
    out: dict[str, torch.Tensor] = {}
    for key, t in state_dict.items():
        if key.endswith("position_ids"):
            continue
        key = key.removeprefix("text_model.")
        if key.startswith("text_projection"):
            raise NotImplementedError("LDM layout for a CLIP text encoder with a projection")
        out[key] = t
    return out


def components_to_ldm(unet: Any, vae: Any, text_encoder: Any, *,
                      dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The whole model as one LDM-layout state dict (contiguous tensors, optional dtype)."""
    if type(text_encoder).__name__ != "CLIPTextModel":
        raise NotImplementedError(f"LDM layout for text encoder {type(text_encoder).__name__} "
                                  "(only CLIPTextModel, SD 1.x)")
    parts = (
        (UNET_PREFIX, unet_to_ldm(unet.state_dict(), unet.config)),
        (VAE_PREFIX, vae_to_ldm(vae.state_dict(), vae.config)),
        (CLIP_PREFIX, clip_to_ldm(text_encoder.state_dict())),
    )
    out: dict[str, torch.Tensor] = {}
    for prefix, sd in parts:
        for k, t in sd.items():
            t = t.detach().cpu()
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            out[prefix + k] = t.contiguous()
    return out


def save_ldm_checkpoint(unet: Any, vae: Any, text_encoder: Any, path: str | os.PathLike[str], *,
                        dtype: torch.dtype | None = None,
                        metadata: dict[str, str] | None = None) -> Path:
    """Write an A1111/ComfyUI-style single-file checkpoint (``.safetensors``); return its path."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: single-file checkpoints are written as .safetensors")
    sd = components_to_ldm(unet, vae, text_encoder, dtype=dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(sd, str(tmp), metadata={"format": "pt", **(metadata or {})})
    os.replace(tmp, path)
    return path
