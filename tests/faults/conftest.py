"""Shared helpers of the fault-injection suite: tiny images, the CLI, mounts, catalog facts."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from craftlora.cli.main import app


def write_pngs(folder: Path, n: int, seed: int = 0, size: int = 8) -> list[str]:
    """``n`` distinct random PNGs ``000.png`` ... in ``folder``; their names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"{i:03d}.png" for i in range(n)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / name)
    return names


def run_cli(*args: object):
    """The real CLI in-process; the result has ``exit_code``, ``stdout`` and ``stderr``."""
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result, *words: str) -> str:
    """Assert a failure with exactly one ``error:`` line on stderr holding ``words``; return it."""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.exit_code != 0, result.stdout
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def catalog_rows(db_path: Path) -> list[tuple]:
    """(sha256, source, set, attributes) of every image, sorted: the catalog's content."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        rows = db.execute(
            "SELECT i.sha256, i.source, i.set_name, i.path, group_concat(a.name || '=' || a.value)"
            " FROM images i LEFT JOIN attributes a ON a.image_id = i.id GROUP BY i.id").fetchall()
    finally:
        db.close()
    return sorted(rows)


def content_files(ws: Path) -> set[str]:
    """Every file under ``ws/images`` (copies, records, temps), relative to ``ws``."""
    return {p.relative_to(ws).as_posix() for p in (ws / "images").rglob("*") if p.is_file()}


@contextlib.contextmanager
def mounted(target: Path, *options: str, source: str = "tmpfs") -> Iterator[Path]:
    """``mount [-t tmpfs] -o OPTIONS SOURCE TARGET`` for the block; skip where not permitted."""
    target.mkdir(parents=True, exist_ok=True)
    kind = ["-t", "tmpfs"] if source == "tmpfs" else []
    r = subprocess.run(["mount", *kind, "-o", ",".join(options), source, str(target)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"mounting is not permitted here ({r.stderr.strip() or r.returncode})")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@contextlib.contextmanager
def read_only_view(folder: Path, view: Path) -> Iterator[Path]:
    """``folder`` seen through a read-only bind mount at ``view`` (root ignores file modes)."""
    with mounted(view, "bind", source=str(folder)):
        r = subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.skip(f"a read-only remount is not permitted here ({r.stderr.strip()})")
        yield view


@pytest.fixture
def fx():
    """The helpers above, for test modules (conftest is not importable under importlib mode)."""
    return SimpleNamespace(write_pngs=write_pngs, run_cli=run_cli, one_error_line=one_error_line,
                           catalog_rows=catalog_rows, content_files=content_files,
                           mounted=mounted, read_only_view=read_only_view)
