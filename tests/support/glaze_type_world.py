"""Shared test world: a tiny labelled workspace, colour = glaze, shape = type (16×16 PNGs)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from craftlora.catalog.workspace import Workspace
from craftlora.config import Attribute, WorkspaceConfig

COLOURS = {"white": (235, 235, 235), "celadon": (120, 170, 130), "black": (20, 20, 20)}
SHAPES = ("bowl", "vase")


def draw(glaze: str, kind: str, rng: np.random.Generator, size: int = 16) -> bytes:
    a = np.full((size, size, 3), 128, dtype=np.int16)
    a += rng.integers(-20, 20, size=(1, 1, 3), dtype=np.int16)
    c = np.array(COLOURS[glaze], dtype=np.int16)
    if kind == "bowl":
        a[size // 2:, 2:-2] = c
    else:
        a[2:-2, size // 2 - 3:size // 2 + 3] = c
    a = np.clip(a + rng.integers(-8, 8, size=a.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def add(ws: Workspace, glaze: str, kind: str, rng: np.random.Generator, *, split: str | None,
        origin: str = "real", set_name: str | None = None, data: bytes | None = None) -> int:
    data = data or draw(glaze, kind, rng)
    sha = hashlib.sha256(data).hexdigest()
    rel = f"images/{sha}.png"
    (ws.root / rel).parent.mkdir(parents=True, exist_ok=True)
    (ws.root / rel).write_bytes(data)
    i = ws.catalog.add_image(sha256=sha, path=rel, width=16, height=16, origin=origin,
                             set_name=set_name, attributes={"glaze": glaze, "type": kind})
    if split:
        ws.catalog.set_splits({i: split})
    return i


def build(root: Path, n_train: int = 6, n_eval: int = 2, seed: int = 0) -> Workspace:
    cfg = WorkspaceConfig(attributes={"glaze": Attribute(values=list(COLOURS)),
                                      "type": Attribute(values=list(SHAPES))})
    ws = Workspace.create(root, cfg)
    rng = np.random.default_rng(seed)
    for g in COLOURS:
        for k in SHAPES:
            for split, n in (("train", n_train), ("val", n_eval), ("test", n_eval)):
                for _ in range(n):
                    add(ws, g, k, rng, split=split)
    return ws
