"""A small JSON record next to each catalogued copy, so the catalog can be rebuilt from files.

``images/ab/<sha256>.png`` gets ``images/ab/<sha256>.png.json`` holding what ingest put in its
catalog row (origin, set, source name, attributes, caption, annotation, provenance). Any stage
that adds an image file to the catalog can write one the same way (``write_record`` before the
row commits); ``craftlora doctor --rebuild`` reads them wherever they lie in the workspace.
Later edits (split, captions written by ``craftlora captions``) live only in the catalog.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from craftlora.data.atomic import temp_prefix

RECORD_SUFFIX = ".json"
FIELDS = ("sha256", "path", "width", "height", "origin", "set_name", "source", "split",
          "caption", "annotation", "provenance", "attributes")


class RecordError(ValueError):
    """A record file is unreadable or does not describe its copy."""


def record_path(copy: Path) -> Path:
    return copy.with_name(copy.name + RECORD_SUFFIX)


def write_record(copy: Path, row: Mapping[str, Any]) -> None:
    """Write the record of ``copy`` (temp + rename; the caller syncs before it commits)."""
    path = record_path(copy)
    tmp = path.with_name(temp_prefix() + path.name)
    data = json.dumps({k: row.get(k) for k in FIELDS}, ensure_ascii=False, sort_keys=True)
    try:
        tmp.write_text(data + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_record(copy: Path) -> dict[str, Any] | None:
    """The record of ``copy``; None when there is none; RecordError when it is unusable."""
    path = record_path(copy)
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecordError(f"{path}: unreadable record ({e})") from e
    if not isinstance(obj, dict) or not isinstance(obj.get("sha256"), str):
        raise RecordError(f"{path}: not a record (no sha256)")
    return {k: obj.get(k) for k in FIELDS}
