"""Image-to-image and inpainting for every family, and the pipeline each mode runs on.

A generation runs in one of three modes: ``text`` (text-to-image), ``img2img`` (start from an
init image, re-noised by ``strength``: 0 keeps it, 1 ignores it; A1111's "denoising strength")
or ``inpaint`` (the same, repainting only the mask's white pixels). Each mode, with or without a
ControlNet, is the matching diffusers pipeline built with ``from_pipe`` over the loaded model's
modules, so LoRA adapters, sampler and weights are shared, never copied. The init image and the
mask are resized to the generation size (Lanczos; the mask nearest-neighbour, then white > 127).

An SDXL refiner (a local diffusers folder, ``StableDiffusionXLImg2ImgPipeline`` with only the
second text encoder) runs after the base as an img2img pass of ``REFINER_STRENGTH`` over the
base's images, the way diffusers documents refining a finished image; it reads the prompt with
its own encoder and does not see LoRAs (none are made for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from craftlora.data.imageio import BadImageError, load_rgb, sha256_file

MODES = ("text", "img2img", "inpaint")
REFINER_STRENGTH = 0.3
_CLASSES = {  # (sdxl, mode, controlnet) → diffusers pipeline class
    (False, "text", False): "StableDiffusionPipeline",
    (False, "text", True): "StableDiffusionControlNetPipeline",
    (False, "img2img", False): "StableDiffusionImg2ImgPipeline",
    (False, "img2img", True): "StableDiffusionControlNetImg2ImgPipeline",
    (False, "inpaint", False): "StableDiffusionInpaintPipeline",
    (False, "inpaint", True): "StableDiffusionControlNetInpaintPipeline",
    (True, "text", False): "StableDiffusionXLPipeline",
    (True, "text", True): "StableDiffusionXLControlNetPipeline",
    (True, "img2img", False): "StableDiffusionXLImg2ImgPipeline",
    (True, "img2img", True): "StableDiffusionXLControlNetImg2ImgPipeline",
    (True, "inpaint", False): "StableDiffusionXLInpaintPipeline",
    (True, "inpaint", True): "StableDiffusionXLControlNetInpaintPipeline",
}


class InitImageError(ValueError):
    """An init image or mask that cannot be used (missing, unreadable, empty mask)."""


@dataclass(frozen=True)
class InitImage:
    """The image a generation starts from, and the mask of what to repaint (inpainting)."""

    path: str
    sha256: str
    image: Image.Image  # RGB at the generation size
    strength: float
    mask_path: str = ""
    mask_sha256: str = ""
    mask: Image.Image | None = None  # L, 255 = repaint, 0 = keep

    @property
    def mode(self) -> str:
        return "inpaint" if self.mask is not None else "img2img"

    def provenance(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "sha256": self.sha256, "strength": self.strength}
        if self.mask is not None:
            out["mask"] = {"path": self.mask_path, "sha256": self.mask_sha256}
        return out


def is_sdxl(pipe: Any) -> bool:
    return getattr(pipe, "text_encoder_2", None) is not None or \
        getattr(pipe.unet.config, "addition_embed_type", None) == "text_time"


def load_init_image(path: str | Path, size: tuple[int, int], strength: float,
                    mask: str | Path | None = None) -> InitImage:
    """Read an init image (and mask) at ``size`` (w, h); InitImageError naming the file."""
    check_init_files(path, mask, strength)
    path = Path(path)
    image = _read(path, "init image").resize(size, Image.Resampling.LANCZOS)
    if mask is None:
        return InitImage(str(path), sha256_file(path), image, strength)
    mask = Path(mask)
    m = _read(mask, "mask").convert("L").resize(size, Image.Resampling.NEAREST)
    white = np.asarray(m) > 127
    if not white.any():
        raise InitImageError(f"{mask}: the mask has no white pixels (white = repaint); "
                             "nothing would change")
    m = Image.fromarray((white * 255).astype(np.uint8), mode="L")
    return InitImage(str(path), sha256_file(path), image, strength, str(mask), sha256_file(mask), m)


def check_init_files(init_image: str | Path | None, mask: str | Path | None,
                     strength: float) -> None:
    """Fail before any model loads: a mask without an init image, a missing file, a bad strength."""
    if mask is not None and init_image is None:
        raise InitImageError("a mask needs an init image to repaint (pass --init-image)")
    if init_image is not None and not 0.0 < strength <= 1.0:
        raise InitImageError(f"strength must be in (0, 1], not {strength}")
    for path, what in ((init_image, "init image"), (mask, "mask")):
        if path is not None and not Path(path).is_file():
            raise InitImageError(f"{path}: {what} not found")


def _read(path: Path, what: str) -> Image.Image:
    if not path.is_file():
        raise InitImageError(f"{path}: {what} not found")
    try:
        return load_rgb(path)
    except BadImageError as e:  # it names the file and the fault
        raise InitImageError(f"{e} (the {what})") from e


def pipeline_for(pipe: Any, mode: str, controlnet: Any = None) -> Any:
    """The diffusers pipeline of ``mode`` (and ``controlnet``) over ``pipe``'s modules."""
    import diffusers
    from diffusers.utils import logging as diffusers_logging

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    cls = getattr(diffusers, _CLASSES[(is_sdxl(pipe), mode, controlnet is not None)])
    if type(pipe) is cls:
        return pipe
    kw: dict[str, Any] = {"dtype": pipe.dtype}  # from_pipe casts the shared modules to it
    before = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # a cast warns although nothing changes
    try:
        if controlnet is not None:
            kw["controlnet"] = controlnet.to(pipe.device, pipe.dtype)
        out = cls.from_pipe(pipe, **kw)
    finally:
        diffusers_logging.set_verbosity(before)
    out.set_progress_bar_config(disable=True)
    return out


def image_kwargs(mode: str, n: int, init: InitImage | None, condition: list[Any] | None
                 ) -> dict[str, Any]:
    """The image arguments of one pipeline call of ``n`` images in ``mode``."""
    kw: dict[str, Any] = {}
    if init is not None:
        kw.update(image=[init.image] * n, strength=init.strength)
        if init.mask is not None:
            kw["mask_image"] = [init.mask] * n
    if condition is not None:
        kw["control_image" if init is not None else "image"] = condition
    return kw


def load_refiner(folder: str | Path, dtype: Any = None) -> Any:
    """An SDXL refiner (``StableDiffusionXLImg2ImgPipeline``) from a local diffusers folder."""
    from diffusers import StableDiffusionXLImg2ImgPipeline

    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise InitImageError(f"{folder}: the refiner must be a local diffusers folder "
                             "(no model_index.json)")
    if not (folder / "text_encoder_2").is_dir():
        raise InitImageError(f"{folder}: not an SDXL refiner (no text_encoder_2/)")
    kw: dict[str, Any] = {"local_files_only": True, "use_safetensors": True}
    if dtype is not None:
        kw["torch_dtype"] = dtype
    refiner = StableDiffusionXLImg2ImgPipeline.from_pretrained(str(folder), **kw)
    refiner.set_progress_bar_config(disable=True)
    return refiner
