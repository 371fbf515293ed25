"""Write the stitch world: per design a flat PNG, its mask and one embroidery PNG per style.

Layout: ``OUT/design/<id>.png``, ``OUT/mask/<id>.png`` (255 = motif), ``OUT/<style>/<id>.png``
and ``OUT/labels.csv`` (``id,motif,colour,split,caption``). Motifs in ``HELD_OUT_MOTIFS`` are
``test``; every other design is ``train``. Same seed, same bytes.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from craftlora.mini.canvas import SUPERSAMPLE, downsample, png_bytes, write_file
from craftlora.mini.stitch.designs import COLOURS, HELD_OUT_MOTIFS, MOTIFS, flat, make_design
from craftlora.mini.stitch.styles import STYLES, embroider

FIELDS = ("id", "motif", "colour", "split", "caption")


def _u8(img: np.ndarray) -> np.ndarray:
    return (np.clip(downsample(img), 0, 1) * 255 + 0.5).astype(np.uint8)


def render_stitch(out: Path, *, per_motif: int = 3, seed: int = 0, size: int = 64) -> Path:
    """Render ``per_motif`` designs of every motif in every style; return labels.csv."""
    if size % 2 or size < 16:
        raise ValueError(f"size must be even and at least 16, not {size}")
    out = Path(out)
    for sub in ("design", "mask", *STYLES):
        (out / sub).mkdir(parents=True, exist_ok=True)
    n = size * SUPERSAMPLE
    colours = sorted(COLOURS)
    rows = []
    for mi, motif in enumerate(MOTIFS):
        for j in range(per_motif):
            rng = np.random.default_rng([seed, mi, j])
            colour = colours[(mi * 3 + j * 5) % len(colours)]
            d = make_design(motif, colour, n, rng)
            rid = f"{motif}-{j:03d}"
            write_file(out / "design" / f"{rid}.png", png_bytes(_u8(flat(d))))
            mask = downsample(d.mask.astype(np.float32)) >= 0.5
            write_file(out / "mask" / f"{rid}.png", png_bytes(mask.astype(np.uint8) * 255))
            for si, style in enumerate(STYLES):
                img = embroider(d, style, np.random.default_rng([seed, mi, j, si]), SUPERSAMPLE)
                write_file(out / style / f"{rid}.png", png_bytes(_u8(img)))
            split = "test" if motif in HELD_OUT_MOTIFS else "train"
            rows.append({"id": rid, "motif": motif, "colour": colour, "split": split,
                         "caption": d.caption})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    labels = out / "labels.csv"
    write_file(labels, buf.getvalue().encode())
    return labels


def read_labels(folder: Path) -> list[dict[str, str]]:
    """Rows of a rendered stitch world's labels.csv (raises ValueError naming the file)."""
    path = Path(folder) / "labels.csv"
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ValueError(f"{path}: cannot read the stitch world's labels ({e.strerror})") from e
    if not rows or set(FIELDS) - set(rows[0]):
        raise ValueError(f"{path}: not a stitch world labels file (needs columns {FIELDS})")
    return rows
