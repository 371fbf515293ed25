"""Sketch guidance through a diffusers ControlNet, and contour adherence of what it made.

A sketch is an image file. In ``lines`` mode it is a line drawing (dark strokes on light
paper, or light on dark): its strokes become the reference edge map and, drawn white on black,
the ControlNet's condition image (the convention of the SD 1.5 scribble / lineart / canny
ControlNets). In ``edges`` mode the file already is a condition edge map (white on black) and
is used as is. Contour adherence = Canny on the generated image against the reference edges:
tolerant F1 (radius 2 px), pixelwise F1 and Chamfer (``craftlora.metrics.contour``).

ControlNets load from a local diffusers folder (``ControlNetModel.from_pretrained``) or a
single ``.safetensors`` file (``ControlNetModel.from_single_file``); nothing is downloaded.
Training one from a base UNet: ``craftlora.generate.controlnet_train``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from craftlora.data.imageio import load_rgb, sha256_file
from craftlora.metrics.contour import contour_adherence, sketch_mask

CONTOUR_RADIUS = 2


class SketchError(ValueError):
    """A sketch or ControlNet cannot be used; the message names the file and the fault."""


@dataclass(frozen=True)
class Sketch:
    path: str
    sha256: str
    condition: Image.Image  # RGB, white strokes on black, at the generation size
    edges: np.ndarray  # bool HxW reference edge map at the generation size


def load_sketch(path: str | Path, size: tuple[int, int], mode: str = "lines") -> Sketch:
    """Read a sketch file and make its condition image and reference edges at ``size`` (w, h)."""
    path = Path(path)
    if not path.is_file():
        raise SketchError(f"{path}: sketch file not found")
    img = load_rgb(path)
    if img.size != size:
        img = img.resize(size, Image.Resampling.NEAREST)
    if mode == "lines":
        edges = sketch_mask(img)
    elif mode == "edges":
        edges = np.asarray(img.convert("L")) > 127
    else:
        raise SketchError(f"sketch mode must be 'lines' or 'edges', not {mode!r}")
    if not edges.any():
        raise SketchError(f"{path}: the sketch has no strokes")
    cond = Image.fromarray(np.where(edges, 255, 0).astype(np.uint8)).convert("RGB")
    return Sketch(path=str(path), sha256=sha256_file(path), condition=cond, edges=edges)


def adherence(sketch: Sketch, image: Image.Image) -> dict[str, Any]:
    """Contour adherence of a generated image to its sketch (tolerant F1 at 2 px, etc.)."""
    return contour_adherence(sketch.edges, image, radius=CONTOUR_RADIUS)


def load_controlnet(source: str | Path | Any, dtype: Any = None) -> Any:
    """A ``ControlNetModel`` from a local folder or ``.safetensors`` file (or one given as is)."""
    from diffusers import ControlNetModel

    if isinstance(source, ControlNetModel):
        return source
    path = Path(source)
    kw: dict[str, Any] = {} if dtype is None else {"torch_dtype": dtype}
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SketchError(f"{path}: not a diffusers ControlNet folder (no config.json)")
        return ControlNetModel.from_pretrained(str(path), local_files_only=True, **kw)
    if path.suffix in (".ckpt", ".pt", ".pth", ".bin"):
        raise SketchError(f"{path}: pickle checkpoints are refused; use .safetensors")
    if path.suffix == ".safetensors" and path.is_file():
        return ControlNetModel.from_single_file(str(path), local_files_only=True, **kw)
    raise SketchError(f"{path}: ControlNet not found (a diffusers folder or .safetensors)")


def controlnet_pipeline(pipe: Any, controlnet: Any) -> Any:
    """A ``StableDiffusionControlNetPipeline`` sharing ``pipe``'s modules (and LoRA adapters)."""
    from diffusers import StableDiffusionControlNetPipeline

    cn = StableDiffusionControlNetPipeline(
        vae=pipe.vae,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        unet=pipe.unet,
        controlnet=controlnet.to(pipe.device),
        scheduler=pipe.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    cn.set_progress_bar_config(disable=True)
    return cn
