"""Helpers for the style tests: a tiny saved model (random init, from configs), image loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from craftlora.models.loader import Components, load_components
from craftlora.models.tiny import TinySpec, save_tiny_pipeline

CORPUS = ["a red star", "a blue moon", "a green circle", "stitchwork style"]


def save_tiny_model(root: Path) -> Path:
    return save_tiny_pipeline(TinySpec(), root / "model", seed=0, corpus=CORPUS)


def tiny_components(model: Path) -> Components:
    return load_components(str(model))


def load(root, sub, rid) -> np.ndarray:
    return np.asarray(Image.open(Path(root) / sub / f"{rid}.png").convert("RGB"))
