"""Sketch guidance through a diffusers ControlNet, and contour adherence of what it made.

A sketch is an image file. In ``lines`` mode it is a line drawing (dark strokes on light
paper, or light on dark): its strokes become the reference edge map and, drawn white on black,
the ControlNet's condition image (the convention of the SD 1.5 scribble / lineart / canny
ControlNets). In ``edges`` mode the file already is a condition edge map (white on black) and
is used as is. Contour adherence = Canny on the generated image against the reference edges:
tolerant F1 (radius 2 px), pixelwise F1 and Chamfer (``craftlora.metrics.contour``).

ControlNets load from a local diffusers folder (``ControlNetModel.from_pretrained``) or a
single ``.safetensors`` file (``ControlNetModel.from_single_file``); nothing is downloaded.
``mini`` names the shipped outline ControlNet of the mini base (``craftlora/mini/controlnet``).
Training one from a base UNet: ``craftlora.generate.controlnet_train``; the mini recipe:
``craftlora.generate.mini_controlnet``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from craftlora.data.imageio import load_rgb, sha256_file
from craftlora.metrics.contour import contour_adherence, sketch_mask

CONTOUR_RADIUS = 2
CONDITIONS = ("outline", "outline+fill")
CONDITION_FILE = "craftlora_condition.json"  # beside a ControlNet's config.json
MINI_CONTROLNET = Path(__file__).resolve().parent.parent / "mini" / "controlnet"
MINI_CONTROLNET_NAMES = ("mini", "mini-controlnet")


class SketchError(ValueError):
    """A sketch or ControlNet cannot be used; the message names the file and the fault."""


@dataclass(frozen=True)
class Sketch:
    path: str
    sha256: str
    condition: Image.Image  # RGB, white strokes on black, at the generation size
    edges: np.ndarray  # bool HxW reference edge map at the generation size


def filled(edges: np.ndarray) -> np.ndarray:
    """The strokes plus every region they enclose (free pixels not 4-connected to the border)."""
    import cv2

    free = (~edges).astype(np.uint8)
    n, labels = cv2.connectedComponents(free, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, border[border > 0]) & free.astype(bool)
    return ~outside


def condition_array(edges: np.ndarray, condition: str = "outline") -> np.ndarray:
    """The ControlNet condition (HxWx3 uint8) of a bool stroke map.

    ``outline``: white strokes on black in all channels (scribble / lineart convention).
    ``outline+fill``: strokes in red and blue, strokes plus enclosed regions in green, so a
    closed outline also gives the ControlNet the region it encloses.
    """
    if condition not in CONDITIONS:
        raise SketchError(f"ControlNet condition must be one of {CONDITIONS}, not {condition!r}")
    e = np.where(edges, 255, 0).astype(np.uint8)
    if condition == "outline":
        return np.stack([e, e, e], -1)
    return np.stack([e, np.where(filled(edges), 255, 0).astype(np.uint8), e], -1)


def controlnet_condition(source: Any) -> str:
    """The condition a ControlNet was trained on (``CONDITION_FILE`` beside it; else outline)."""
    if not isinstance(source, (str, Path)):
        return str(getattr(source, "craftlora_condition", "outline"))
    path = MINI_CONTROLNET / "controlnet" if str(source) in MINI_CONTROLNET_NAMES else Path(source)
    for folder in (path, path / "controlnet"):
        f = folder / CONDITION_FILE
        if f.is_file():
            try:
                return str(json.loads(f.read_text())["condition"])
            except (ValueError, KeyError) as e:
                raise SketchError(f"{f}: unreadable condition file: {e}") from e
    return "outline"


def load_sketch(
    path: str | Path, size: tuple[int, int], mode: str = "lines", condition: str = "outline"
) -> Sketch:
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
    cond = Image.fromarray(condition_array(edges, condition))
    return Sketch(path=str(path), sha256=sha256_file(path), condition=cond, edges=edges)


def adherence(sketch: Sketch, image: Image.Image) -> dict[str, Any]:
    """Contour adherence of a generated image to its sketch (tolerant F1 at 2 px, etc.)."""
    return contour_adherence(sketch.edges, image, radius=CONTOUR_RADIUS)


def load_controlnet(source: str | Path | Any, dtype: Any = None) -> Any:
    """A ``ControlNetModel`` from ``mini``, a local folder or a ``.safetensors`` file (or as is)."""
    from diffusers import ControlNetModel

    if isinstance(source, ControlNetModel):
        return source
    if str(source) in MINI_CONTROLNET_NAMES:
        if not (MINI_CONTROLNET / "controlnet" / "config.json").is_file():
            raise SketchError(
                f"the shipped mini ControlNet is not present in {MINI_CONTROLNET}; build it with "
                "`python -m craftlora.generate.mini_controlnet --work WORK --out "
                "src/craftlora/mini/controlnet`"
            )
        source = MINI_CONTROLNET / "controlnet"
    path = Path(source)
    shipped = path / "controlnet" / "config.json"  # a shipped folder: controlnet/ + its card
    if path.is_dir() and not (path / "config.json").is_file() and shipped.is_file():
        path = path / "controlnet"
    kw: dict[str, Any] = {} if dtype is None else {"torch_dtype": dtype}
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SketchError(f"{path}: not a diffusers ControlNet folder (no config.json)")
        model = ControlNetModel.from_pretrained(str(path), local_files_only=True, **kw)
        model.craftlora_condition = controlnet_condition(path)
        return model
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


def shipped_segmenter(source: Any) -> Path | None:
    """The outline segmenter shipped beside a ControlNet (``silhouette.safetensors``), if any."""
    if not isinstance(source, (str, Path)):
        return None
    path = MINI_CONTROLNET if str(source) in MINI_CONTROLNET_NAMES else Path(source)
    for folder in (path, path.parent):
        if (folder / "silhouette.safetensors").is_file():
            return folder / "silhouette.safetensors"
    return None
