"""Inference: only the style blocks' LoRA on the base UNet, img2img from a design (or text).

The LoRA file may hold every block (stage 1 trains them all); ``style_state_dict`` keeps the
style blocks' keys, and only those modules get an adapter. The LAB colour fix keeps the output's
lightness and takes a/b from the design (the paper's fix for flat embroidery).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from peft.utils import set_peft_model_state_dict

from craftlora.metrics.contour import canny_edges
from craftlora.models.lora import add_lora, read_lora_file

UNET_PREFIX = "unet."


def style_state_dict(sd: Mapping[str, torch.Tensor], blocks: Sequence[str]
                     ) -> dict[str, torch.Tensor]:
    """The peft-form tensors (``unet.`` prefix dropped) of modules inside ``blocks``."""
    out = {}
    for k, v in sd.items():
        name = k.removeprefix(UNET_PREFIX)
        if any(name.startswith(b + ".") for b in blocks):
            out[name] = v
    if not out:
        raise ValueError(f"the LoRA has no keys inside the style blocks {list(blocks)}")
    return out


def load_style_lora(unet, path: str | Path, blocks: Sequence[str]) -> list[str]:
    """Attach an adapter to the style blocks only and load their tensors; return its modules."""
    sd = style_state_dict(read_lora_file(path)[0], blocks)
    rank = next(v.shape[0] for k, v in sd.items() if k.endswith("lora_A.weight"))
    pats = [re.escape(b) + r"\." for b in blocks]
    modules = add_lora(unet, rank=rank, alpha=float(rank), blocks=pats)
    result = set_peft_model_state_dict(unet, sd)
    if getattr(result, "unexpected_keys", None):
        raise ValueError(f"{path}: keys that fit no module: {result.unexpected_keys[:3]}")
    return modules


def lab_colour_fix(output: np.ndarray, design: np.ndarray) -> np.ndarray:
    """L from ``output``, a and b from ``design`` (uint8 RGB, same size)."""
    lo = cv2.cvtColor(output, cv2.COLOR_RGB2LAB)
    ld = cv2.cvtColor(design, cv2.COLOR_RGB2LAB)
    lo[..., 1:] = ld[..., 1:]
    return cv2.cvtColor(lo, cv2.COLOR_LAB2RGB)


CONTROLS = ("canny", "tile")


def control_image(design: np.ndarray, kind: str) -> np.ndarray:
    """The ControlNet condition of a design: ``canny`` edges (white on black) or, for ``tile``,
    the design blurred in proportion to its size (the tile models' low-detail input)."""
    if kind == "canny":
        edges = canny_edges(design, 50, 150).astype(np.uint8) * 255
        return np.repeat(edges[..., None], 3, axis=2)
    if kind == "tile":
        sigma = max(1.0, max(design.shape[:2]) / 128)
        return cv2.GaussianBlur(design, (0, 0), sigma)
    raise ValueError(f"control must be one of {CONTROLS}, not {kind!r}")


def _img2img(comp, controlnet=None):
    from diffusers import DDIMScheduler

    from craftlora.generate.img2img import pipeline_for

    pipe = comp.pipeline(DDIMScheduler.from_config(comp.noise_scheduler.config))
    return pipeline_for(pipe, "img2img", controlnet)


@torch.no_grad()
def stylize(comp, designs: Sequence[np.ndarray], prompts: Sequence[str], *, strength: float = 0.6,
            steps: int = 20, guidance: float = 5.0, seed: int = 0, colour_fix: bool = True,
            controlnet=None, control: str = "canny", control_scale: float = 0.5
            ) -> list[np.ndarray]:
    """img2img each design with its prompt (the style LoRA already loaded); uint8 RGB out.

    With a ``controlnet`` (a loaded ``ControlNetModel``), each design's ``control`` condition
    (``canny`` or ``tile``) steers the denoising at ``control_scale``."""
    from PIL import Image

    if controlnet is not None and control not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS}, not {control!r}")
    pipe = _img2img(comp, controlnet)
    out = []
    for i, (design, prompt) in enumerate(zip(designs, prompts, strict=True)):
        g = torch.Generator().manual_seed(seed + i)
        kw = {}
        if controlnet is not None:
            kw = {"control_image": Image.fromarray(control_image(design, control)),
                  "controlnet_conditioning_scale": control_scale}
        img = pipe(prompt, image=Image.fromarray(design), strength=strength,
                   num_inference_steps=steps, guidance_scale=guidance, generator=g,
                   **kw).images[0]
        arr = np.asarray(img.convert("RGB").resize(design.shape[1::-1]))
        out.append(lab_colour_fix(arr, design) if colour_fix else arr)
    return out


@torch.no_grad()
def stylize_text(comp, prompts: Sequence[str], *, steps: int = 20, guidance: float = 5.0,
                 seed: int = 0) -> list[np.ndarray]:
    """Text-to-image with the style LoRA loaded (no design, no colour fix)."""
    pipe = comp.pipeline()
    return [np.asarray(pipe(p, num_inference_steps=steps, guidance_scale=guidance,
                            generator=torch.Generator().manual_seed(seed + i)).images[0])
            for i, p in enumerate(prompts)]
