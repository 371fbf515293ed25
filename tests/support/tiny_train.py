"""A tiny training world: captioned coloured-shape images in a workspace, and run configs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import tomli_w
from PIL import Image

from craftlora.catalog.workspace import Workspace
from craftlora.config import WorkspaceConfig

COLOURS = {"red": (200, 40, 30), "blue": (30, 60, 200), "green": (40, 170, 60)}
SHAPES = ("vase", "bowl")


def make_image(colour: str, shape: str, size: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    a = np.full((size, size, 3), 235, np.float32) + rng.normal(0, 6, (size, size, 3))
    yy, xx = np.mgrid[:size, :size] / size
    mask = ((xx - 0.5) ** 2 / 0.06 + (yy - 0.55) ** 2 / 0.12 < 1) if shape == "vase" else \
        ((xx - 0.5) ** 2 / 0.16 + (yy - 0.6) ** 2 / 0.03 < 1)
    a[mask] = np.array(COLOURS[colour]) + rng.normal(0, 8, (int(mask.sum()), 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def build_workspace(root: Path, *, n: int = 6, size: int = 32, caption: bool = True) -> Path:
    cfg = WorkspaceConfig(
        caption_template="a {colour} {shape}",
        attributes={"colour": {"values": list(COLOURS)}, "shape": {"values": list(SHAPES)}},
    )
    ws = Workspace.create(root, cfg)
    (root / "images").mkdir()
    for i in range(n):
        colour, shape = list(COLOURS)[i % 3], SHAPES[i % 2]
        p = root / "images" / f"{i:03d}.png"
        make_image(colour, shape, size, i).save(p)
        ws.catalog.add_image(
            sha256=hashlib.sha256(p.read_bytes()).hexdigest(), path=f"images/{p.name}",
            width=size, height=size, split="train",
            caption=f"a {colour} {shape}" if caption else None,
            attributes={"colour": colour, "shape": shape} if caption else None,
        )
    ws.close()
    return root


def write_config(path: Path, model: Path, workspace: Path, out: Path, **over) -> Path:
    cfg = {
        "name": "t", "mode": "lora", "model": str(model), "output_dir": str(out), "seed": 3,
        "max_steps": 6, "batch_size": 2, "checkpoint_every": 2, "keep_last": 2,
        "lora": {"rank": 4, "alpha": 8.0},
        "data": {"workspace": str(workspace), "resolution": 32},
        "optim": {"lr": 1e-3},
    }
    for k, v in over.items():
        node = cfg
        *parents, leaf = k.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    path.write_text(tomli_w.dumps(cfg))
    return path
