"""Confine a path taken from user input (a config value, a name) to the folder it belongs in."""

from __future__ import annotations

import os
from pathlib import Path


class PathEscapeError(ValueError):
    """A path that would land outside the folder it is meant for."""


def inside(folder: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path | None:
    """``folder / path`` resolved (symlinks followed), or None when it lies outside ``folder``."""
    root = os.path.realpath(folder)
    full = os.path.realpath(os.path.join(root, os.fspath(path)))
    return Path(full) if os.path.commonpath([root, full]) == root else None


def confined(folder: str | os.PathLike[str], relative: str | os.PathLike[str]) -> Path:
    """``folder / relative`` resolved (symlinks followed); raise if it leaves ``folder``.

    Absolute ``relative`` values, ``..`` parts and symlinks that point out are all refused:
    the check is ``commonpath`` of the two real paths, so it holds whatever the spelling.
    """
    text = os.fspath(relative)
    if not text or "\0" in text:
        raise PathEscapeError(f"{text!r}: not a usable file name")
    if os.path.isabs(text):
        raise PathEscapeError(f"{text!r}: an absolute path; give a name inside {folder}")
    full = inside(folder, text)
    if full is None or full == Path(os.path.realpath(folder)):
        raise PathEscapeError(f"{text!r}: leads outside {folder}")
    return full
