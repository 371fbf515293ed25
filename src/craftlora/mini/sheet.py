"""Contact sheets: one row per attribute value, a few example images in each row."""

from __future__ import annotations

import csv
from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from craftlora.data.atomic import atomic_write_bytes
from craftlora.mini.kiln import ATTRIBUTES

LABEL_W = 190


class SheetError(ValueError):
    """The folder has no usable labels.csv."""


def _read_labels(folder: Path) -> tuple[list[str], list[dict[str, str]]]:
    path = folder / "labels.csv"
    if not path.is_file():
        raise SheetError(f"{path}: not found (render a world into {folder} first)")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = list(reader.fieldnames or [])
        rows = list(reader)
    if "file" not in cols or len(cols) < 2:
        raise SheetError(f"{path}: needs a 'file' column and at least one attribute column")
    return [c for c in cols if c != "file"], rows


def _values(attr: str, rows: list[dict[str, str]]) -> list[str]:
    known = ATTRIBUTES.get(attr)
    seen = sorted({r[attr] for r in rows})
    if known and set(seen) <= set(known):
        return list(known)
    return seen


def make_sheet(folder: Path, out: Path, *, per_row: int = 8, cell: int = 64) -> dict[str, Any]:
    """Write a PNG contact sheet of ``folder`` (a rendered world) to ``out``.

    Unreadable images are skipped and listed under ``skipped`` with the reason.
    """
    folder, out = Path(folder), Path(out)
    attrs, rows = _read_labels(folder)
    lines = [(a, v) for a in attrs for v in _values(a, rows)]
    sheet = Image.new("RGB", (LABEL_W + per_row * (cell + 2), len(lines) * (cell + 2)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    skipped: list[dict[str, str]] = []
    bad: set[str] = set()
    for r, (attr, value) in enumerate(lines):
        y0 = r * (cell + 2)
        matches = [row["file"] for row in rows if row[attr] == value]
        draw.text((6, y0 + cell // 2 - 12), f"{attr}: {value}", fill="black", font=font)
        draw.text((6, y0 + cell // 2 + 2), f"{len(matches)} images", fill="grey", font=font)
        col = 0
        for name in matches:
            if col == per_row:
                break
            path = folder / name
            if name in bad:
                continue
            try:
                with Image.open(path, formats=["PNG"]) as im:
                    thumb = im.convert("RGB").resize((cell, cell), Image.Resampling.NEAREST)
            except (OSError, UnidentifiedImageError) as e:
                skipped.append({"file": str(path), "reason": str(e)})
                bad.add(name)
                continue
            sheet.paste(thumb, (LABEL_W + col * (cell + 2), y0))
            col += 1
    buf = BytesIO()
    sheet.save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    return {"sheet": str(out), "rows": len(lines), "attributes": attrs, "skipped": skipped}
