"""Sketch guidance through a diffusers ControlNet, and contour adherence of what it made.

A sketch is an image file. In ``lines`` mode it is a line drawing (dark strokes on light
paper, or light on dark): its strokes become the reference edge map and, drawn white on black,
the ControlNet's condition image (the convention of the SD 1.5 scribble / lineart / canny
ControlNets). In ``edges`` mode the file already is a condition edge map (white on black) and
is used as is. Contour adherence = Canny on the generated image against the reference edges:
tolerant F1 (radius 2 px), pixelwise F1 and Chamfer (``craftlora.metrics.contour``).

ControlNets (SD 1.x / 2.x or SDXL, matching the base) load from a local diffusers folder
(``ControlNetModel.from_pretrained``) or a single ``.safetensors`` file
(``ControlNetModel.from_single_file``); nothing is downloaded.
``mini`` names the shipped outline ControlNet of the mini base (``craftlora/mini/controlnet``).
Training one from a base UNet: ``craftlora.train.controlnet``; the mini recipe:
``recipes/build_mini_controlnet.py``. The condition format: ``craftlora.models.condition``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from craftlora.data.imageio import load_rgb, sha256_file
from craftlora.generate.img2img import pipeline_for
from craftlora.metrics.contour import contour_adherence, sketch_mask
from craftlora.models.condition import CONDITION_FILE, SketchError, condition_array

CONTOUR_RADIUS = 2
MINI_CONTROLNET = Path(__file__).resolve().parent.parent / "mini" / "controlnet"
MINI_CONTROLNET_NAMES = ("mini", "mini-controlnet")


@dataclass(frozen=True)
class Sketch:
    path: str
    sha256: str
    condition: Image.Image  # RGB, white strokes on black, at the generation size
    edges: np.ndarray  # bool HxW reference edge map at the generation size


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
                "`python recipes/build_mini_controlnet.py --work WORK --out "
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
    """The text-to-image ControlNet pipeline (SD or SDXL) sharing ``pipe``'s modules and LoRAs."""
    return pipeline_for(pipe, "text", controlnet)


def shipped_segmenter(source: Any) -> Path | None:
    """The outline segmenter shipped beside a ControlNet (``silhouette.safetensors``), if any."""
    if not isinstance(source, (str, Path)):
        return None
    path = MINI_CONTROLNET if str(source) in MINI_CONTROLNET_NAMES else Path(source)
    for folder in (path, path.parent):
        if (folder / "silhouette.safetensors").is_file():
            return folder / "silhouette.safetensors"
    return None
