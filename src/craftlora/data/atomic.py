"""Crash-safe file writes: temp file in the same folder, fsync, os.replace."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"


def _file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file (read once: umask is process-wide)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def remove_orphan_temps(folder: Path) -> int:
    """Delete temp files a killed writer left behind; return how many."""
    n = 0
    for p in Path(folder).rglob(TMP_PREFIX + "*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n
