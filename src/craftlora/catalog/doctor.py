"""`craftlora doctor`: check a workspace's catalog against its files, and rebuild it from them.

The files are the content (``images/ab/<sha256>.<ext>`` and any other image with a JSON record
next to it, see ``records``); the catalog is the index. A damaged catalog is moved aside (never
deleted) and a new one is built from the copies and their records, keeping the split and
caption of every row that can still be read from the damaged file.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from craftlora.catalog.ingest_worker import IMAGES_DIR
from craftlora.catalog.records import RECORD_SUFFIX, RecordError, read_record
from craftlora.catalog.store import Catalog, CatalogError
from craftlora.catalog.workspace import WorkspaceError, expect_catalog
from craftlora.config import CATALOG_NAME, CONFIG_NAME, WorkspaceConfig, load_config
from craftlora.data.atomic import TMP_PREFIX
from craftlora.data.imageio import BadImageError, decode_rgb, is_image_name, sha256_bytes

_CONTENT_NAME = re.compile(r"[0-9a-f]{64}\.[a-z0-9]+")


def copies(root: Path) -> list[Path]:
    """Image files the catalog should index: every content-addressed copy under ``images/``,
    and any other image in the workspace that has a record next to it."""
    folder = root / IMAGES_DIR
    found = {p for p in folder.rglob("*") if p.is_file() and is_image_name(p.name)
             and not p.name.startswith(TMP_PREFIX)} if folder.is_dir() else set()
    for rec in root.rglob("*" + RECORD_SUFFIX):
        image = rec.with_name(rec.name[: -len(RECORD_SUFFIX)])
        if is_image_name(image.name) and image.is_file() and not image.name.startswith(TMP_PREFIX):
            found.add(image)
    return sorted(found)


def check(root: Path) -> dict[str, Any]:
    """What is wrong with the workspace at ``root``; ``ok`` when nothing is."""
    files = {p.relative_to(root).as_posix() for p in copies(root)}
    out: dict[str, Any] = {"workspace": str(root), "catalog": "ok", "images_in_catalog": None,
                           "files": len(files), "missing_files": [], "uncatalogued_files": [],
                           "without_record": 0}
    out["without_record"] = sum(not Path(root / f).with_name(
        Path(f).name + RECORD_SUFFIX).is_file() for f in files)
    try:
        expect_catalog(root)
        with Catalog(root / CATALOG_NAME, readonly=not os.access(root, os.W_OK)) as cat:
            named = {r[0] for r in cat.execute("SELECT path FROM images")}
    except (CatalogError, WorkspaceError) as e:
        out["catalog"] = str(e)
        out["ok"] = False
        return out
    out["images_in_catalog"] = len(named)
    out["missing_files"] = sorted(p for p in named if not (root / p).is_file())
    out["uncatalogued_files"] = sorted(files - named)
    out["ok"] = not out["missing_files"]
    return out


def rebuild(root: Path) -> dict[str, Any]:
    """Make the catalog index every copy under ``images/``; move a damaged one aside first."""
    config = load_config(root / CONFIG_NAME)
    path = root / CATALOG_NAME
    salvaged: dict[str, dict[str, Any]] = {}
    moved = None
    try:
        cat = Catalog(path)
    except CatalogError:
        salvaged = _salvage(path, limit=4 * len(copies(root)) + 1000)
        moved = _move_aside(path)
        cat = Catalog(path)
    added, problems, with_record = 0, [], 0
    with cat:
        known = cat.known_paths()
        rows = []
        for copy in copies(root):
            rel = copy.relative_to(root).as_posix()
            if rel in known:
                continue
            try:
                row = _row_for(copy, rel, config, salvaged)
            except (OSError, BadImageError, RecordError, ValueError) as e:
                problems.append({"path": rel, "reason": str(e)})
                continue
            with_record += row.pop("_recorded")
            rows.append(row)
        with cat.transaction():
            for row in rows:
                try:
                    cat.add_image(**row)
                    added += 1
                except CatalogError as e:
                    problems.append({"path": row["path"], "reason": str(e)})
        total = cat.count()
    return {"workspace": str(root), "moved_aside": None if moved is None else str(moved),
            "added": added, "from_records": with_record, "without_record": added - with_record,
            "salvaged_rows": len(salvaged), "images_in_catalog": total, "problems": problems}


def _row_for(copy: Path, rel: str, config: WorkspaceConfig,
             salvaged: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The catalog row of one copy: its record, checked against the bytes, plus what survived."""
    content_named = rel.startswith(IMAGES_DIR + "/")
    if content_named and not _CONTENT_NAME.fullmatch(copy.name):
        raise ValueError("not a content-addressed copy (name is not <sha256>.<ext>)")
    data = copy.read_bytes()
    sha = sha256_bytes(data)
    if content_named and not copy.name.startswith(sha):
        raise ValueError("content does not match its name (the copy is damaged)")
    image, fmt = decode_rgb(data, rel, max_pixels=config.ingest.max_pixels)
    record = read_record(copy)
    if record is not None and record["sha256"] != sha:
        raise ValueError("content does not match its record (the file is damaged)")
    row: dict[str, Any] = dict(record) if record else {
        "origin": "real", "set_name": "recovered", "source": "", "split": None,
        "caption": None, "annotation": None, "attributes": {},
        "provenance": {"recovered_by": "craftlora doctor", "format": fmt}}
    allowed = config.attributes
    row["attributes"] = {k: v for k, v in (row.get("attributes") or {}).items()
                         if k in allowed and v in allowed[k].values}
    row.update(sha256=sha, path=rel, width=image.width, height=image.height)
    row.update(salvaged.get(sha, {}))
    if row.get("origin") == "synthetic" and row.get("split") in ("val", "test"):
        row["split"] = "train"
    row["_recorded"] = record is not None
    return row


def _salvage(path: Path, limit: int) -> dict[str, dict[str, Any]]:
    """Split and caption of every row still readable in a damaged catalog, by sha256."""
    out: dict[str, dict[str, Any]] = {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return out
    try:
        for i in range(1, limit + 1):
            try:
                r = db.execute("SELECT sha256, split, caption FROM images WHERE id = ?",
                               (i,)).fetchone()
            except sqlite3.Error:
                continue
            if r is not None:
                out[r[0]] = {"split": r[1], "caption": r[2]}
    finally:
        db.close()
    return out


def _move_aside(path: Path) -> Path:
    """Rename the catalog (with its -wal and -shm files) to ``...damaged-<time>``; return it."""
    dest = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("-wal", "-shm", ""):
        part = path.with_name(path.name + suffix)
        if part.exists():
            os.replace(part, dest.with_name(dest.name + suffix))
    return dest
