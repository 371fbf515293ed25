"""Fixtures for QC tests: a workspace with a procedural real set and a synthetic set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from craftlora.catalog.workspace import Workspace
from craftlora.config import Attribute, WorkspaceConfig
from craftlora.data.imageio import sha256_file

COLOURS = {"red": (170, 40, 40), "blue": (40, 60, 170)}


def vessel(seed: int, size: int = 64, colour: str | None = None) -> np.ndarray:
    """A textured 'vessel' (ellipse with a rim line) on a lit background, uint8 RGB."""
    rng = np.random.default_rng(seed)
    bg = rng.uniform(150, 210)
    img = np.full((size, size, 3), bg, np.float32)
    img += np.linspace(-15, 15, size, dtype=np.float32)[None, :, None]
    colour = colour or ("red" if rng.random() < 0.5 else "blue")
    c = np.array(COLOURS[colour], np.float32) + rng.uniform(-15, 15, 3)
    cx, cy = (int(v) for v in rng.integers(size // 2 - 6, size // 2 + 6, 2))
    axes = (int(rng.integers(size // 6, size // 3)), int(rng.integers(size // 4, size // 2.4)))
    cv2.ellipse(img, (cx, cy), axes, 0, 0, 360, c.tolist(), -1)
    cv2.ellipse(img, (cx, cy - axes[1] + 3), (axes[0] // 2, 3), 0, 0, 360, (30, 30, 30), 1)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def add_png(ws: Workspace, arr: np.ndarray, rel: str, *, origin: str, set_name: str,
            split: str | None = None, attributes: dict[str, str] | None = None,
            **save_kw: object) -> int:
    path = ws.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **save_kw)
    h, w = arr.shape[:2]
    return ws.catalog.add_image(sha256=sha256_file(path), path=rel, width=w, height=h,
                                origin=origin, set_name=set_name, split=split,
                                attributes=attributes or {})


@pytest.fixture
def qc_workspace(tmp_path: Path) -> Callable[..., Workspace]:
    """Factory: a workspace with ``n_real`` real train images and ``n_syn`` good synthetic."""

    def make(n_real: int = 40, n_syn: int = 6) -> Workspace:
        cfg = WorkspaceConfig(attributes={"glaze": Attribute(values=list(COLOURS))})
        ws = Workspace.create(tmp_path / "ws", cfg)
        for i in range(n_real):
            colour = "red" if i % 2 else "blue"
            add_png(ws, vessel(i, colour=colour), f"real/{i}.png", origin="real",
                    set_name="real", split="train", attributes={"glaze": colour})
        for i in range(n_syn):
            colour = "red" if i % 2 else "blue"
            add_png(ws, vessel(1000 + i, colour=colour), f"syn/{i}.png", origin="synthetic",
                    set_name="syn", attributes={"glaze": colour})
        return ws

    return make
