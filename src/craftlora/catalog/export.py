"""Export catalog images for other tools: kohya folders, HF imagefolder, or CSV.

- ``kohya``: ``OUT/<name>.<ext>`` with its caption in ``OUT/<name>.txt``;
- ``imagefolder``: ``OUT/metadata.jsonl`` (``file_name``, ``text`` and one key per attribute)
  next to the images; without ``split`` the images go to ``OUT/train``, ``OUT/validation``,
  ``OUT/test`` (and ``OUT/unassigned`` for images without a split), each with its metadata;
- ``csv``: ``OUT/labels.csv`` (``file``, the attributes, ``caption``, ``split``, ``origin``,
  ``set``, ``sha256``) next to the images; ``craftlora ingest`` reads it back. A formula-like
  cell (``=...``, ``+...``) gets a leading ``'`` so a spreadsheet shows it as text.
The output folder must lie outside the workspace.
File names are the content-addressed names of the workspace copies, so they never collide.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from craftlora.catalog.csv_cells import neutralise
from craftlora.catalog.sources import inside
from craftlora.catalog.store import ImageRecord
from craftlora.catalog.workspace import Workspace
from craftlora.data.atomic import atomic_write_bytes, temp_prefix

FORMATS = ("kohya", "imagefolder", "csv")


class ExportError(ValueError):
    """The export cannot start: a bad folder or format."""

HF_SPLIT_DIRS = {"train": "train", "val": "validation", "test": "test", None: "unassigned"}


def export(ws: Workspace, fmt: str, out: Path, split: str | None = None) -> int:
    """Write the images (of one split, or all) in format ``fmt`` under ``out``; return count."""
    if fmt not in FORMATS:
        raise ExportError(f"export format must be one of {FORMATS}, not {fmt!r}")
    out = Path(out)
    if inside(os.path.realpath(ws.root), str(out)):
        raise ExportError(f"{out}: export folder is inside the workspace {ws.root}; "
                          "choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    records = ws.catalog.images(split=split)
    if fmt == "kohya":
        for rec in records:
            name = _copy(ws, rec, out)
            caption = (rec.caption or "") + "\n"
            atomic_write_bytes(out / (Path(name).stem + ".txt"), caption.encode("utf-8"))
    elif fmt == "csv":
        _write_csv(ws, records, out)
    elif split is not None:
        _write_imagefolder(ws, records, out)
    else:
        for s, folder in HF_SPLIT_DIRS.items():
            part = [r for r in records if r.split == s]
            if part:
                _write_imagefolder(ws, part, out / folder)
    return len(records)


def _copy(ws: Workspace, rec: ImageRecord, folder: Path) -> str:
    name = Path(rec.path).name
    dest = folder / name
    src = ws.resolve(rec.path)
    if not (dest.is_file() and dest.stat().st_size == src.stat().st_size):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(temp_prefix() + name)  # a full disk leaves no half image
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return name


def _write_imagefolder(ws: Workspace, records: Iterable[ImageRecord], folder: Path) -> None:
    lines = []
    for rec in records:
        name = _copy(ws, rec, folder)
        lines.append(json.dumps({"file_name": name, "text": rec.caption or "", **rec.attributes},
                                ensure_ascii=False, sort_keys=False))
    atomic_write_bytes(folder / "metadata.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))


def _write_csv(ws: Workspace, records: list[ImageRecord], folder: Path) -> None:
    attrs = list(ws.config.attributes)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", *attrs, "caption", "split", "origin", "set", "sha256"])
    for rec in records:
        name = _copy(ws, rec, folder)
        w.writerow([neutralise(c) for c in (
            name, *(rec.attributes.get(a, "") for a in attrs), rec.caption or "",
            rec.split or "", rec.origin, rec.set_name, rec.sha256)])
    atomic_write_bytes(folder / "labels.csv", buf.getvalue().encode("utf-8"))
