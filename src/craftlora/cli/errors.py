"""One readable line for an exception no command foresaw (the root handler in ``cli/app.py``)."""

from __future__ import annotations

import errno
import pickle
import re
import sqlite3

from pydantic import ValidationError

MAX_CHARS = 400

_OS_REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or directory",
    errno.EDQUOT: "disk quota exceeded",
    errno.EEXIST: "already exists",
    errno.ENOTDIR: "not a folder",
}


def describe(e: BaseException) -> str:
    """``what went wrong`` in one line, without a traceback, a URL or a Python repr."""
    if isinstance(e, ValidationError):
        text = f"invalid {e.title}: " + "; ".join(
            f"{'.'.join(map(str, x['loc'])) or 'value'}: {x['msg'].removeprefix('Value error, ')}"
            for x in e.errors()
        )
    elif isinstance(e, sqlite3.Error):
        text = f"catalog database: {_sqlite_reason(e)}"
    elif isinstance(e, OSError):
        text = _os_reason(e)
    elif isinstance(e, pickle.UnpicklingError):
        text = f"refused a file that holds more than plain weights ({_unpickler_reason(e)})"
    elif isinstance(e, MemoryError):
        text = "out of memory"
    elif type(e).__name__ == "SafetensorError":
        text = f"safetensors: {e}"
    elif isinstance(e, ValueError) or type(e).__module__.startswith("craftlora"):
        text = str(e) or type(e).__name__
    else:
        text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return _one_line(text)


def _os_reason(e: OSError) -> str:
    reason = _OS_REASONS.get(e.errno or 0) or e.strerror or str(e)
    where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
    return f"{where}: {reason}" if where else reason


def _sqlite_reason(e: sqlite3.Error) -> str:
    msg = str(e)
    if "malformed" in msg or "not a database" in msg:
        return f"{msg}: the catalog file is damaged"
    if "readonly" in msg or "read-only" in msg:
        return f"{msg}: the workspace is read-only"
    if "disk is full" in msg:
        return f"{msg}: no space left on device"
    return msg


def _unpickler_reason(e: BaseException) -> str:
    """torch's weights_only message, less its advice to load the file unsafely."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", str(e)) if p.strip()]
    advice = ("Weights only load failed", "Check the documentation")
    reason = " ".join(p for p in paragraphs if not p.startswith(advice))
    reason = reason.split("WeightsUnpickler error:")[-1].strip()
    return reason or "not plain tensors"


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"
