"""Crash-safe file writes: temp file in the same folder, fsync, os.replace.

A temp file is named ``.tmp-<pid>-...`` after the process that writes it, so a cleaner removes
only the temps of processes that are gone and never a live writer's (two runs may share a
folder).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"
_OWNER = re.compile(re.escape(TMP_PREFIX) + r"(\d+)-")


def _file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file (read once: umask is process-wide)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def temp_prefix() -> str:
    """The prefix of this process's temp files (owned: see ``remove_orphan_temps``)."""
    return f"{TMP_PREFIX}{os.getpid()}-"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), dir=path.parent)
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


def pid_alive(pid: int) -> bool:
    """True when a process with this id runs on this machine (a zombie is not running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    try:  # Linux: a killed process nobody has reaped yet is a zombie ("Z") until it is
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def remove_orphan_temps(folder: Path) -> int:
    """Delete temp files whose writer is gone (a killed run); a live writer's stay. Count them."""
    n = 0
    for p in Path(folder).rglob(TMP_PREFIX + "*"):
        m = _OWNER.match(p.name)
        if m and (int(m.group(1)) == os.getpid() or pid_alive(int(m.group(1)))):
            continue
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n
