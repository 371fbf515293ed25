"""Fixtures for the data tests: a hand-built CMYK ICC profile, a labelled workspace factory."""

from __future__ import annotations

import itertools
import struct

import pytest

from craftlora.catalog.workspace import Workspace
from craftlora.config import Attribute, WorkspaceConfig


def _s15(x: float) -> bytes:
    return struct.pack(">i", int(round(x * 65536)))


def build_cmyk_profile(lab_of) -> bytes:
    """A minimal ICC v2 CMYK→Lab printer profile whose A2B0 grid is ``lab_of(c, m, y, k)``."""
    text = b"test CMYK\0"
    desc = (b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8) + bytes(3)
            + bytes(67))
    wtpt = b"XYZ " + bytes(4) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    clut = b""
    for c, m, y, k in itertools.product(range(2), repeat=4):
        lum, a, b = lab_of(c, m, y, k)
        clut += struct.pack(">HHH", int(lum * 65280 / 100), int((a + 128) * 256),
                            int((b + 128) * 256))
    identity = b"".join(_s15(float(i == j)) for i in range(3) for j in range(3))
    mft2 = (b"mft2" + bytes(4) + bytes([4, 3, 2, 0]) + identity + struct.pack(">HH", 2, 2)
            + struct.pack(">HH", 0, 65535) * 4 + clut + struct.pack(">HH", 0, 65535) * 3)
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"A2B0", mft2), (b"cprt", b"text" + bytes(4)
                                                                + b"none\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (struct.pack(">I", offset + len(body)) + bytes(4) + struct.pack(">I", 0x02100000)
              + b"prtrCMYKLab " + bytes(12) + b"acsp" + bytes(24) + bytes(4)
              + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(48))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


@pytest.fixture
def red_cyan_icc() -> bytes:
    """A CMYK profile in which cyan ink prints red: naive conversion would give cyan."""
    return build_cmyk_profile(lambda c, m, y, k: (max(0, 100 - 60 * k - 40 * c), 70 * c, 50 * c))


@pytest.fixture
def labelled_ws(tmp_path):
    """Build a workspace from {(glaze, type): n} real images (and optional synthetic ones)."""
    opened = []

    def make(counts, synthetic=0, name="ws"):
        cfg = WorkspaceConfig(attributes={
            "glaze": Attribute(values=["white", "celadon", "black", "blue"],
                               phrases={"celadon": "a jade-green sheen"}),
            "type": Attribute(values=["bowl", "vase", "plate", "cup", "jar"]),
        }, caption_template="{type}, {glaze} glaze with {glaze.phrase}")
        ws = Workspace.create(tmp_path / name, cfg)
        opened.append(ws)
        n = 0
        for (glaze, kind), count in counts.items():
            for _ in range(count):
                n += 1
                ws.catalog.add_image(sha256=f"{n:064x}", path=f"images/{n}.png", width=8,
                                     height=8, attributes={"glaze": glaze, "type": kind})
        for _ in range(synthetic):
            n += 1
            ws.catalog.add_image(sha256=f"{n:064x}", path=f"images/{n}.png", width=8, height=8,
                                 origin="synthetic", set_name="gen",
                                 attributes={"glaze": "black", "type": "jar"})
        return ws

    yield make
    for ws in opened:
        ws.close()
