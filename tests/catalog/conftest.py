"""Fixtures for catalog tests: tiny image files and a labelled workspace."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from craftlora.catalog.workspace import Workspace
from craftlora.config import Attribute, IngestConfig, WorkspaceConfig


def encode(seed: int, fmt: str = "PNG", size: tuple[int, int] = (12, 10)) -> bytes:
    """Bytes of a small random image (different seeds → different content)."""
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def image_bytes():
    return encode


@pytest.fixture
def write_images():
    """write_images(folder, names, start_seed=0) → {name: bytes}; format follows the extension."""

    def write(folder, names, start_seed=0):
        out = {}
        for i, name in enumerate(names):
            fmt = "JPEG" if name.lower().endswith((".jpg", ".jpeg")) else "PNG"
            data = encode(start_seed + i, fmt)
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            out[name] = data
        return out

    return write


@pytest.fixture
def kiln_ws(tmp_path):
    """A workspace with glaze and type attributes and a 10,000-pixel bomb limit."""
    cfg = WorkspaceConfig(
        attributes={"glaze": Attribute(values=["white", "celadon"]),
                    "type": Attribute(values=["bowl", "vase"])},
        ingest=IngestConfig(max_pixels=10_000),
        caption_template="{type}, {glaze} glaze",
    )
    ws = Workspace.create(tmp_path / "ws", cfg)
    yield ws
    ws.close()
