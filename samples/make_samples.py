"""Regenerate samples/porcelain: small procedural vessels, labels.csv and deliberate bad files.

Run from the repository root: `.venv/bin/python samples/make_samples.py`. Deterministic.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent / "porcelain"
GLAZE = {"celadon": (148, 190, 160), "white": (236, 234, 224), "blue-and-white": (238, 240, 245)}
# (dynasty, glaze, type): count — a long tail, like museum collections
PLAN = {
    ("Song", "celadon", "bowl"): 10,
    ("Song", "celadon", "vase"): 6,
    ("Yuan", "blue-and-white", "vase"): 5,
    ("Song", "white", "bowl"): 4,
    ("Yuan", "blue-and-white", "plate"): 3,
    ("Song", "white", "plate"): 2,
    ("Yuan", "celadon", "plate"): 2,
    ("Yuan", "white", "bowl"): 1,
    ("Song", "celadon", "plate"): 1,
}


def vessel(dynasty: str, glaze: str, kind: str, rng: random.Random) -> Image.Image:
    bg = tuple(200 + rng.randrange(30) for _ in range(3))
    im = Image.new("RGB", (64, 64), bg)
    d = ImageDraw.Draw(im)
    col = tuple(max(0, min(255, c + rng.randrange(-12, 13))) for c in GLAZE[glaze])
    cx = 32 + rng.randrange(-3, 4)
    if kind == "bowl":
        d.chord([cx - 24, 14, cx + 24, 54], 0, 180, fill=col, outline=(60, 60, 60))
        d.rectangle([cx - 6, 52, cx + 6, 56], fill=col)
    elif kind == "vase":
        d.ellipse([cx - 16, 22, cx + 16, 56], fill=col, outline=(60, 60, 60))
        d.rectangle([cx - 5, 8, cx + 5, 26], fill=col, outline=(60, 60, 60))
    else:
        d.ellipse([cx - 26, 30, cx + 26, 46], fill=col, outline=(60, 60, 60))
    if glaze == "blue-and-white":
        for _ in range(4):
            x, y = cx + rng.randrange(-12, 12), 30 + rng.randrange(0, 14)
            d.arc([x - 5, y - 4, x + 5, y + 4], 0, 300, fill=(30, 60, 150), width=2)
    if dynasty == "Yuan":
        d.line([cx - 14, 34, cx + 14, 34], fill=(120, 80, 40), width=2)
    return im


def bomb_png() -> bytes:
    """A tiny PNG whose header claims 30000 x 30000 pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(
        b"\x00" * 64)) + chunk(b"IEND", b"")


def main() -> None:
    if ROOT.exists():
        shutil.rmtree(ROOT)
    rng = random.Random(7)
    rows = []
    first = None
    for (dynasty, glaze, kind), n in PLAN.items():
        folder = ROOT / dynasty.lower()
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            im = vessel(dynasty, glaze, kind, rng)
            if i == 0 and kind == "vase":
                name = f"{glaze} {kind} 青花 {i:02d}.PNG"  # spaces, unicode, upper-case ext
            elif i % 3 == 2:
                name = f"{glaze}-{kind}-{i:02d}.jpg"
            else:
                name = f"{glaze}-{kind}-{i:02d}.png"
            path = folder / name
            im.save(path, quality=92) if name.endswith(".jpg") else im.save(path)
            rel = path.relative_to(ROOT).as_posix()
            rows.append((rel, dynasty, glaze, kind))
            first = first or rel
            if i == 0:
                ann = {"description": f"A {dynasty} dynasty {glaze} porcelain {kind}.",
                       "objects": [{"name": f"{kind} body", "description": f"{glaze} glaze",
                                    "position": ["centre of the image"]}]}
                path.with_suffix(".json").write_text(json.dumps(ann, indent=1) + "\n")
    bad = ROOT / "z-inbox"  # sorts last, so the copy (not the original) is the duplicate
    bad.mkdir()
    (bad / "empty.png").write_bytes(b"")
    (bad / "notes.jpg").write_text("these are notes, not a picture\n")
    data = (ROOT / first).read_bytes()
    (bad / "truncated.png").write_bytes(data[: len(data) // 2])
    (bad / "bowl copy.png").write_bytes(data)  # exact duplicate
    (bad / "huge.png").write_bytes(bomb_png())
    vessel("Song", "white", "vase", rng).save(bad / "ming vase.png")
    os.symlink("../../make_samples.py", bad / "outside.png")  # leads outside SOURCE
    rows += [("z-inbox/empty.png", "Song", "white", "bowl"),
             ("z-inbox/notes.jpg", "Song", "white", "bowl"),
             ("z-inbox/truncated.png", "Song", "celadon", "bowl"),
             ("z-inbox/bowl copy.png", "Song", "celadon", "bowl"),
             ("z-inbox/huge.png", "Song", "white", "vase"),
             ("z-inbox/ming vase.png", "Ming", "white", "vase"),
             ("z-inbox/outside.png", "Song", "white", "vase")]
    lines = ["file,dynasty,glaze,type"] + [",".join(r) for r in rows]
    lines.insert(12, "z-inbox/lost.png,Song,white,bowl")  # a file that is not there
    lines.insert(20, "song/extra.png,Song,white,bowl,EXTRA")  # a malformed row
    (ROOT / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
