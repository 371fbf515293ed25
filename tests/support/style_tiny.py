"""Helpers for the style tests: tiny components (random init, from configs), image loading."""

from __future__ import annotations

import numpy as np
from PIL import Image

from craftlora.models.loader import Components
from craftlora.models.tiny import TinySpec, build_tiny_pipeline


def tiny_components(tmp_path, seed: int = 0) -> Components:
    pipe = build_tiny_pipeline(TinySpec(), seed=seed, workdir=tmp_path,
                               corpus=["a red star", "a blue moon", "stitchwork style"])
    return Components(unet=pipe.unet, vae=pipe.vae, text_encoder=pipe.text_encoder,
                      tokenizer=pipe.tokenizer, noise_scheduler=pipe.scheduler, source="tiny")


def load(root, sub, rid) -> np.ndarray:
    return np.asarray(Image.open(root / sub / f"{rid}.png").convert("RGB"))
