"""Generation defaults per model family, by string name, and how a model source's family is known.

A preset is what ``plan``, ``generate`` and ``train`` fall back on when the user sets nothing:
the bundled mini base has its own measured settings, the Stable Diffusion families the usual
ones. The family is read from the source without loading weights: ``mini`` by name; a diffusers
folder from its ``model_index.json`` and ``unet/config.json``; a single ``.safetensors`` file
from its tensor names (the header only).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from craftlora.models.family import CheckpointLayoutError, inspect_checkpoint

# The loader's names for the bundled base, kept here so that reading a preset never imports torch
# (a test checks they agree with craftlora.models.loader).
MINI_NAMES = ("mini", "mini-base")
MINI_BASE = Path(__file__).resolve().parent.parent / "mini" / "base"


class PresetError(ValueError):
    """The model source's family cannot be told, or a preset name is unknown."""


class ModelPreset(BaseModel):
    """Sampling defaults of one model family (sampler by its A1111 name, A1111 clip skip)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str
    label: str = Field(description="how help and messages name the family")
    sampler: str
    steps: int = Field(ge=1)
    cfg: float = Field(ge=0.0)
    clip_skip: int = Field(ge=1, description="A1111 convention: 1 = last layer, 2 = penultimate")
    resolution: int = Field(gt=0, description="native image side in pixels")
    source: str = Field(description="where these values come from")

    @property
    def train_clip_skip(self) -> int:
        """The same layer in diffusers' convention (layers skipped), as training configs count."""
        return self.clip_skip - 1

    def summary(self) -> str:
        """``SD 1.5: DPM++ 2M Karras, 20 steps, CFG 7, clip skip 2, 512 px``."""
        return (
            f"{self.label}: {self.sampler}, {self.steps} steps, CFG {self.cfg:g}, "
            f"clip skip {self.clip_skip}, {self.resolution} px"
        )


PRESETS: dict[str, ModelPreset] = {
    p.family: p
    for p in [
        ModelPreset(
            family="mini", label="mini", sampler="DDIM", steps=20, cfg=1.75, clip_skip=1,
            resolution=64, source="measured on the mini world (docs/demo.md)",
        ),
        ModelPreset(
            family="sd15", label="SD 1.5", sampler="DPM++ 2M Karras", steps=20, cfg=7.0,
            clip_skip=2, resolution=512, source="the porcelain study's settings",
        ),
        ModelPreset(
            family="sd2", label="SD 2.x", sampler="DPM++ 2M Karras", steps=25, cfg=7.0,
            clip_skip=1, resolution=768, source="common diffusers defaults",
        ),
        ModelPreset(
            family="sdxl", label="SDXL", sampler="DPM++ 2M Karras", steps=30, cfg=7.0,
            clip_skip=1, resolution=1024, source="common diffusers defaults",
        ),
    ]
}

def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(family: str) -> ModelPreset:
    """The preset registered under ``family`` (``mini``, ``sd15``, ``sd2``, ``sdxl``)."""
    try:
        return PRESETS[family]
    except KeyError:
        raise PresetError(f"no preset {family!r}; presets: {', '.join(PRESETS)}") from None


def model_family(source: str | os.PathLike[str]) -> str:
    """The family of a model source (see the module doc); PresetError when it cannot be told."""
    src = str(source)
    if src in MINI_NAMES:
        return "mini"
    path = Path(src).expanduser()
    if path.is_dir():
        if path.resolve() == MINI_BASE.resolve():
            return "mini"
        return _folder_family(path)
    if path.suffix == ".safetensors" and path.is_file():
        try:
            return inspect_checkpoint(path).family
        except CheckpointLayoutError as e:
            raise PresetError(str(e)) from e
    raise PresetError(
        f"{src}: cannot tell the model family without a local folder or .safetensors file"
    )


def preset_for(source: str | os.PathLike[str]) -> ModelPreset:
    """The preset of a model source's family: ``preset_for("mini").cfg == 1.75``."""
    return PRESETS[model_family(source)]


def presets_help() -> str:
    """One line for ``--help``: each family's sampler and CFG."""
    return "; ".join(f"{p.label}: {p.sampler}, CFG {p.cfg:g}" for p in PRESETS.values())


def _folder_family(folder: Path) -> str:
    index = _read_json(folder / "model_index.json")
    if "text_encoder_2" in index or "XL" in str(index.get("_class_name", "")):
        return "sdxl"
    unet = _read_json(folder / "unet" / "config.json")
    if unet.get("addition_embed_type") == "text_time":
        return "sdxl"
    dim = unet.get("cross_attention_dim")
    family = {768: "sd15", 1024: "sd2", 2048: "sdxl"}.get(dim) if isinstance(dim, int) else None
    if family is None:
        raise PresetError(
            f"{folder}: unet cross_attention_dim {dim!r} matches no preset family "
            "(768 SD 1.5, 1024 SD 2.x, 2048 SDXL); set sampler, steps, cfg and clip_skip yourself"
        )
    return family


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"{path}: not found (a diffusers model folder needs it)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PresetError(f"{path}: not readable: {e}") from e
    if not isinstance(obj, dict):
        raise PresetError(f"{path}: expected a JSON object")
    return obj
