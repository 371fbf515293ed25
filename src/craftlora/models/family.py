"""Which Stable Diffusion family a single-file checkpoint is, and the configs shipped for each.

A1111 / ComfyUI checkpoints carry weights only. The family is read from the header (tensor names
and shapes, no weights): SDXL has ``conditioner.embedders.1.model.*`` (OpenCLIP bigG) and the
UNet's ``label_emb``; SD 2.x has the OpenCLIP text encoder ``cond_stage_model.model.*``; SD 1.x
the transformers CLIP ``cond_stage_model.transformer.*``. The UNet's cross-attention width
and the text width must then match the config the file is loaded with.

``craftlora/models/configs/`` holds the diffusers configs of the full-size models (SD 1.5,
SD 2.x at 512 px with epsilon and at 768 px with v-prediction, SDXL base 1.0): component configs,
scheduler and tokenizer settings, no weights and no vocabulary. Whether an SD 2.x file predicts
noise or velocity cannot be read from its tensors: an SD 2.x file is taken as SD 2.1 768 px
``v_prediction`` unless ``prediction_type="epsilon"`` says it is a 512 px base model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

CONFIGS = Path(__file__).resolve().parent / "configs"
SHIPPED = {"sd15": "sd15", "sd2": "sd2-768-v", "sd2-epsilon": "sd2-512", "sdxl": "sdxl-base"}
PREDICTION_TYPES = ("epsilon", "v_prediction")
_UNET = "model.diffusion_model."
_TEXT = {  # family → the token embedding of its (last) text encoder
    "sdxl": "conditioner.embedders.1.model.token_embedding.weight",
    "sd2": "cond_stage_model.model.token_embedding.weight",
    "sd15": "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
}


class CheckpointLayoutError(ValueError):
    """A single file is not an SD 1.x / 2.x / SDXL checkpoint in the original layout."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What a single file's header says: family and the sizes that pick a config."""

    path: str
    family: str  # sd15, sd2 or sdxl
    context_dim: int  # UNet cross-attention width
    model_channels: int  # UNet's first block width
    text_width: int  # (last) text encoder's width

    def sizes(self) -> dict[str, int]:
        return {"context_dim": self.context_dim, "model_channels": self.model_channels,
                "text_width": self.text_width}


def read_shapes(path: str | Path) -> dict[str, list[int]]:
    """Tensor name → shape from a ``.safetensors`` header (no weights read)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as e:  # safetensors raises several types for a bad header
        raise CheckpointLayoutError(f"{path}: not a readable safetensors file: {e}") from e


def inspect_checkpoint(path: str | Path) -> CheckpointInfo:
    """The family and sizes of a single-file checkpoint; CheckpointLayoutError when unknown."""
    return checkpoint_info(path, read_shapes(path))


def checkpoint_info(path: str | Path, shapes: dict[str, list[int]]) -> CheckpointInfo:
    """The family and sizes that tensor names and shapes (of the file ``path``) tell."""
    family = next((f for f, key in _TEXT.items() if key in shapes), None)
    if family == "sdxl" and f"{_UNET}label_emb.0.0.weight" not in shapes:
        family = None
    if family is None:
        hint = ("an SDXL refiner (only its second encoder) is not a base model; "
                if "conditioner.embedders.0.model.text_projection" in shapes else "")
        raise CheckpointLayoutError(
            f"{path}: unknown checkpoint layout ({hint}expected an SD 1.x, SD 2.x or SDXL "
            "single file in the original A1111/ComfyUI layout: a text encoder under "
            "cond_stage_model.* or conditioner.embedders.*, the UNet under model.diffusion_model.)")
    for prefix, part in ((_UNET, "UNet"), ("first_stage_model.", "VAE")):
        if not any(k.startswith(prefix) for k in shapes):
            raise CheckpointLayoutError(f"{path}: no {part} tensors ({prefix}*); a file holding "
                                        "only part of a model cannot be loaded as a checkpoint")
    to_k = sorted(k for k in shapes
                  if k.startswith(_UNET) and re.search(r"attn2\.to_k\.weight$", k))
    conv_in = shapes.get(f"{_UNET}input_blocks.0.0.weight")
    if not to_k or conv_in is None:
        raise CheckpointLayoutError(f"{path}: the UNet has no cross-attention or no input conv; "
                                    "not an SD-family checkpoint")
    return CheckpointInfo(str(path), family, shapes[to_k[0]][1], conv_in[0],
                          shapes[_TEXT[family]][1])


def shipped_config(family: str, prediction_type: str | None = None) -> Path:
    """The shipped diffusers config folder of a family (SD 2.x: 768 v unless epsilon)."""
    if prediction_type is not None and prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction type must be one of {PREDICTION_TYPES}, "
                         f"not {prediction_type!r}")
    key = "sd2-epsilon" if family == "sd2" and prediction_type == "epsilon" else family
    return CONFIGS / SHIPPED[key]


def config_sizes(folder: Path) -> dict[str, int]:
    """The sizes of a diffusers config folder that a checkpoint's header must match."""
    unet = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
    last_te = "text_encoder_2" if (folder / "text_encoder_2").is_dir() else "text_encoder"
    te = json.loads((folder / last_te / "config.json").read_text(encoding="utf-8"))
    return {"context_dim": int(unet["cross_attention_dim"]),
            "model_channels": int(unet["block_out_channels"][0]),
            "text_width": int(te["hidden_size"])}


def config_for(info: CheckpointInfo, prediction_type: str | None = None) -> Path:
    """The shipped config folder matching a checkpoint, or CheckpointLayoutError naming why not."""
    folder = shipped_config(info.family, prediction_type)
    want = config_sizes(folder)
    if info.sizes() != want:
        raise CheckpointLayoutError(
            f"{info.path}: an {info.family} layout, but its sizes {info.sizes()} are not those "
            f"of the shipped {folder.name} config {want}; pass a local diffusers folder of "
            "the same architecture as the model config (--model-config DIR)")
    return folder
