"""The per-file work of ingest, run in worker processes: read, hash, decode, copy, sidecars.

Kept apart from ``ingest.py`` so a worker imports only what it needs. The bytes that are hashed
are the bytes that are decoded and the bytes that are copied, so the copy matches its hash.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from craftlora.catalog.names import readable_name
from craftlora.data.atomic import temp_prefix
from craftlora.data.imageio import FORMAT_EXTENSION, BadImageError, decode_rgb, sha256_bytes

IMAGES_DIR = "images"
#: errors after which no further copy can succeed: the run stops instead of refusing each file
WORKSPACE_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
_MADE: set[str] = set()  # folders this process has already created


@dataclass(frozen=True)
class Job:
    source_path: str  # absolute
    shown: str  # the name errors use (relative to SOURCE)
    workspace: str  # absolute workspace root
    max_pixels: int
    caption_file: str | None = None
    annotation_file: str | None = None
    copy: bool = True  # False: only check the file (it will be refused for another reason)


def content_path(sha256: str, fmt: str) -> str:
    """Catalog path (relative to the workspace) of a content-addressed copy."""
    return f"{IMAGES_DIR}/{sha256[:2]}/{sha256}{FORMAT_EXTENSION.get(fmt, '.img')}"


def write_copy(dest: Path, data: bytes) -> None:
    """Temp file + ``os.replace``: readers see the whole copy or none. No fsync here: ingest
    calls ``os.sync()`` once per batch, before the catalog rows naming the copies commit."""
    folder = str(dest.parent)
    if folder not in _MADE:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _MADE.add(folder)
    tmp = dest.with_name(f"{temp_prefix()}{dest.name}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def process(job: Job) -> dict[str, Any]:
    """Everything ingest needs to know about one file; never raises for a bad file."""
    try:
        data = Path(job.source_path).read_bytes()
    except OSError as e:
        return {"ok": False, "reason": f"cannot read: {e.strerror or e}"}
    try:
        image, fmt = decode_rgb(data, job.shown, max_pixels=job.max_pixels)
    except BadImageError as e:
        return {"ok": False, "reason": e.reason}
    sha = sha256_bytes(data)
    rel = content_path(sha, fmt)
    dest = Path(job.workspace) / rel
    copied = False
    try:
        if job.copy and not (dest.is_file() and dest.stat().st_size == len(data)):
            write_copy(dest, data)
            copied = True
    except OSError as e:
        return {"ok": False, "reason": f"cannot copy into the workspace: {e.strerror or e}",
                "fatal": e.errno in WORKSPACE_FULL, "errno": e.errno}
    out: dict[str, Any] = {"ok": True, "sha256": sha, "path": rel, "width": image.width,
                           "height": image.height, "format": fmt, "bytes": len(data),
                           "copied": copied}
    if job.caption_file:
        try:
            out["caption"] = Path(job.caption_file).read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError) as e:
            out["sidecar_problem"] = f"{_base(job.caption_file)}: unreadable ({e})"
    if job.annotation_file:
        from craftlora.data.captions import AnnotationError, validate_annotation

        name = _base(job.annotation_file)
        try:
            obj = json.loads(Path(job.annotation_file).read_text(encoding="utf-8"))
            validate_annotation(obj)
            out["annotation"] = obj
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            out["sidecar_problem"] = f"{name}: not readable JSON ({e})"
        except AnnotationError as e:
            out["sidecar_problem"] = f"{name}: not a structured annotation ({e})"
    return out


def _base(path: str) -> str:
    return readable_name(os.path.basename(path))
