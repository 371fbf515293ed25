"""How ComfyUI's LoRA loader finds the layer of each kohya module name, written from its
documented convention, to check a file before a user sees ``lora key not loaded``.

ComfyUI holds the model in the original single-file layout and builds its key map from it:

- UNet: every weight ``diffusion_model.<LDM path>.weight`` answers to ``lora_unet_<LDM path with
  "." → "_">``, and also to ``lora_unet_<diffusers path with "." → "_">`` through its own
  diffusers → LDM table (so both spellings load for every family);
- CLIP: the attention projections and MLP layers of each encoder layer answer to
  ``<prefix>_text_model_encoder_layers_<i>_{self_attn_q_proj, …, mlp_fc2}``: prefix ``lora_te``
  for SD 1.x/2.x's single encoder (``clip_l``; SD 2.x ``clip_h``), ``lora_te1`` / ``lora_te2``
  for SDXL's ``clip_l`` / ``clip_g``. (ComfyUI is more lenient than this map: it also takes
  ``lora_te_`` for SDXL's first encoder; this check holds files to the names sd-scripts writes.)

A key the map does not know, or whose tensor does not fit the layer, is left unloaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from craftlora.models.kohya_names import base_layers, is_sdxl_unet, unet_ldm_paths

CLIP_LAYERS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
               "mlp.fc1", "mlp.fc2")


def _weights(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(m.weight.shape) for n, m in base_layers(model).items()}


def comfy_key_map(models: Mapping[str, torch.nn.Module]
                  ) -> dict[str, tuple[str, tuple[int, ...]]]:
    """kohya module name → (ComfyUI model key, weight shape) for a UNet and its text encoders."""
    unet = models["unet"]
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for path, shape in _weights(unet).items():
        try:
            ldm = unet_ldm_paths(unet.config, [path])[path]
        except NotImplementedError:
            continue  # ComfyUI's model has no such layer
        target = (f"diffusion_model.{ldm}.weight", shape)
        out["lora_unet_" + ldm.replace(".", "_")] = target
        out["lora_unet_" + path.replace(".", "_")] = target
    sdxl = is_sdxl_unet(unet.config)
    first = "clip_h" if unet.config.cross_attention_dim == 1024 else "clip_l"  # SD 2.x: ViT-H
    encoders = {"text_encoder": ("lora_te1", "clip_l") if sdxl else ("lora_te", first),
                "text_encoder_2": ("lora_te2", "clip_g")}
    for part, (prefix, clip) in encoders.items():
        if part not in models:
            continue
        for path, shape in _weights(models[part]).items():
            m = re.fullmatch(r"(?:text_model\.)?encoder\.layers\.(\d+)\.(.+)", path)
            if m and m[2] in CLIP_LAYERS:
                name = f"text_model_encoder_layers_{m[1]}_{m[2].replace('.', '_')}"
                key = f"{clip}.transformer.text_model.encoder.layers.{m[1]}.{m[2]}.weight"
                out[f"{prefix}_{name}"] = (key, shape)
    return out


def comfy_unloaded(sd: Mapping[str, torch.Tensor], models: Mapping[str, torch.nn.Module]
                   ) -> list[str]:
    """The keys of a kohya state dict that ComfyUI would not load onto ``models``."""
    key_map = comfy_key_map(models)
    left = []
    for key, t in sd.items():
        name, _, kind = key.partition(".")
        if name not in key_map or kind not in ("lora_down.weight", "lora_up.weight", "alpha"):
            left.append(key)
            continue
        shape = key_map[name][1]
        fits = (kind == "alpha" or (kind == "lora_up.weight" and t.shape[0] == shape[0])
                or (kind == "lora_down.weight" and tuple(t.shape[1:]) == shape[1:]))
        if not fits:
            left.append(key)
    return left


__all__ = ["CLIP_LAYERS", "comfy_key_map", "comfy_unloaded"]
