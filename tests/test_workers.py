"""Worker processes die with their parent: SIGKILL the parent of a busy pool, no worker survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from craftlora.runtime.workers import first_error, map_chunks, pool, run_parallel

POOL_SCRIPT = """
import sys, time
from craftlora.runtime.workers import pool

if __name__ == "__main__":
    if sys.argv[2:] == ["no-prctl"]:
        sys.platform = "elsewhere"  # forked workers inherit it: only the watchdog binds them
    with pool(2, start=sys.argv[1]) as ex:
        futures = [ex.submit(time.sleep, 120) for _ in range(2)]
        print("started", flush=True)
        time.sleep(120)
"""

PARALLEL_SCRIPT = """
import time
from craftlora.runtime.workers import run_parallel

def nap(seconds, report):
    report(1)
    time.sleep(seconds)

if __name__ == "__main__":
    print("started", flush=True)
    run_parallel(nap, [(120,), (120,)], total=2, desc="nap", progress=False)
"""


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``, read from /proc."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z":
                out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill_parent_and_watch(tmp_path: Path, script: str, *args: str) -> tuple[set[int], set[int]]:
    (tmp_path / "parent.py").write_text(textwrap.dedent(script))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py"), *args], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              start_new_session=True, cwd=tmp_path)
    try:
        assert parent.stdout.readline().strip() == b"started"
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.1)
            workers = {p for p in _children(parent.pid)
                       if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()}
        assert len(workers) >= 2, "the pool never started its workers"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.05)
        return workers, {p for p in workers if _alive(p)}
    finally:
        os.killpg(parent.pid, signal.SIGKILL) if _alive(parent.pid) else None
        for p in workers if "workers" in locals() else ():
            if _alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("start", [["fork"], ["spawn"], ["fork", "no-prctl"]])
def test_workers_die_when_the_parent_is_killed(tmp_path, start):
    workers, survivors = _kill_parent_and_watch(tmp_path, POOL_SCRIPT, *start)
    assert len(workers) == 2 and survivors == set()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_run_parallel_workers_die_when_the_parent_is_killed(tmp_path):
    workers, survivors = _kill_parent_and_watch(tmp_path, PARALLEL_SCRIPT)
    assert len(workers) == 2 and survivors == set()


def test_first_error_raises_the_worker_error_and_cancels_the_rest():
    with pool(1, start="fork") as ex:
        futures = [ex.submit(int, "not a number")] + [ex.submit(time.sleep, 0.2)
                                                       for _ in range(6)]
        with pytest.raises(ValueError, match="not a number"):
            first_error(set(futures))
        assert futures[-1].cancelled()  # what had not reached the worker yet


def _square_chunk(chunk):
    return [(i, i * i) for i in chunk]


def test_map_chunks_keeps_item_order_whatever_the_workers():
    items = list(range(23))
    one = map_chunks(_square_chunk, items, workers=1, chunk=5, desc="x", progress=False)
    two = map_chunks(_square_chunk, items, workers=2, chunk=5, desc="x", progress=False)
    assert one == two == [(i, i * i) for i in items]


def test_run_parallel_in_process_reports_progress_and_keeps_order():
    seen = []

    def job(x, report):
        report(x)
        seen.append(x)
        return x * 10

    assert run_parallel(job, [(3,)], total=3, desc="x", progress=False) == [30]
    assert seen == [3]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_killing_ingest_leaves_no_worker_behind(tmp_path):
    """Issue 22 item 3: SIGKILL of `craftlora ingest` left two workers blocked on a pipe."""
    import numpy as np
    from PIL import Image

    from craftlora.catalog.workspace import Workspace
    from craftlora.config import Attribute, IngestConfig, WorkspaceConfig

    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(600):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(src / f"{i}.png")
    cfg = WorkspaceConfig(attributes={"glaze": Attribute(values=["a"])},
                          ingest=IngestConfig(workers=2))
    Workspace.create(tmp_path / "ws", cfg).close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "craftlora.cli.main", "ingest",
                             str(tmp_path / "ws"), str(src), "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(workers) < 2 and proc.poll() is None:
            time.sleep(0.02)
            workers = _children(proc.pid)
        assert len(workers) == 2, "ingest ended before its two workers could be seen"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.05)
        assert not {p for p in workers if _alive(p)}
    finally:
        for p in workers:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
