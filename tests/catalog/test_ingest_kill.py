"""Ingest killed with SIGKILL part-way (a real subprocess), then rerun: every image exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from craftlora.catalog.ingest import ingest
from craftlora.catalog.records import RECORD_SUFFIX
from craftlora.catalog.workspace import Workspace
from craftlora.config import Attribute, WorkspaceConfig
from craftlora.data.atomic import TMP_PREFIX

N = 800


def _count(db_path) -> int:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT count(*) FROM images").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def _start(ws_dir, src):
    cmd = [sys.executable, "-m", "craftlora.cli.main", "ingest", str(ws_dir), str(src),
           "--commit-every", "4", "--json"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _kill_when(proc, db_path, at_least: int) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if _count(db_path) >= at_least:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    proc.wait()
    with contextlib.suppress(ProcessLookupError):  # forked workers share the session
        os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, "ingest finished before it could be killed"
    return _count(db_path)


def test_sigkill_mid_ingest_then_rerun_leaves_every_image_once(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N):
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(
            src / f"im{i:04d}.png")
    (src / "labels.csv").write_text(
        "file,glaze\n" + "".join(f"im{i:04d}.png,{'ab'[i % 2]}\n" for i in range(N)))
    cfg = WorkspaceConfig(attributes={"glaze": Attribute(values=["a", "b"])})
    Workspace.create(tmp_path / "ws", cfg).close()
    db_path = tmp_path / "ws" / "catalog.sqlite"

    first = _kill_when(_start(tmp_path / "ws", src), db_path, at_least=8)
    second = _kill_when(_start(tmp_path / "ws", src), db_path, at_least=first + 40)
    assert 0 < first < second < N

    with Workspace.open(tmp_path / "ws") as ws:
        report = ingest(ws, src, progress=False)
        assert report.rejected == [] and report.label_problems == []
        assert report.already_present + report.ingested == N
        assert report.already_present >= second
        rows = ws.catalog.execute("SELECT source, count(*) AS n FROM images GROUP BY source")
        assert len(rows) == N and {r["n"] for r in rows} == {1}
        recs = ws.catalog.images()
        assert {r.attributes["glaze"] for r in recs} == {"a", "b"}
        on_disk = {p.relative_to(ws.root).as_posix()
                   for p in (ws.root / "images").rglob("*") if p.is_file()}
        assert not any(TMP_PREFIX in p for p in on_disk)
        # no orphan copies, no temp files; each copy has its record (for `craftlora doctor`)
        assert on_disk == {r.path for r in recs} | {r.path + RECORD_SUFFIX for r in recs}
        for r in recs[::97]:
            assert ws.resolve(r.path).read_bytes() == (src / r.source).read_bytes()
