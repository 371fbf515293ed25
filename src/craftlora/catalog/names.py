"""File names as the catalog and reports hold them: text, readable, and lossless.

POSIX file names are bytes. Python hands back a name that is not valid UTF-8 with its stray
bytes as surrogates (``surrogateescape``), which SQLite, JSON files and terminals refuse. The
catalog form writes each such byte as ``\\xNN`` and a backslash as ``\\\\``; ``fs_name`` turns
it back into the exact name on disk. A valid UTF-8 name without a backslash is unchanged.
"""

from __future__ import annotations

import os
import re

_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2})")


def readable_name(name: str) -> str:
    """The catalog form of a file-system name (``os.walk`` / ``os.listdir`` output)."""
    raw = os.fsencode(name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\\" not in text:
        return text
    out = []
    for part in _utf8_runs(raw):
        if isinstance(part, str):
            out.append(part.replace("\\", "\\\\"))
        else:
            out.append("".join(f"\\x{b:02x}" for b in part))
    return "".join(out)


def fs_name(readable: str) -> str:
    """The file-system name (surrogateescape'd str) that ``readable_name`` wrote."""
    if "\\" not in readable:
        return readable
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(readable):
        out += readable[pos:m.start()].encode("utf-8")
        tok = m.group(1)
        out += b"\\" if tok == "\\" else bytes([int(tok[1:], 16)])
        pos = m.end()
    out += readable[pos:].encode("utf-8")
    return os.fsdecode(bytes(out))


def _utf8_runs(raw: bytes) -> list[str | bytes]:
    """``raw`` split into decodable UTF-8 text and the bytes that are not."""
    parts: list[str | bytes] = []
    while raw:
        try:
            parts.append(raw.decode("utf-8"))
            break
        except UnicodeDecodeError as e:
            if e.start:
                parts.append(raw[:e.start].decode("utf-8"))
            parts.append(raw[e.start:e.end])
            raw = raw[e.end:]
    return parts
