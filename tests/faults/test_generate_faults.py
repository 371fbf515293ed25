"""Faults of ``craftlora generate``: SIGKILL mid-run then resume, two runs on one plan at once,
a full disk. Each ends with the plan's images each in the catalog once, every file matching its
row, no file without a row and no temp file left; a failure is one ``error:`` line.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_train import build_workspace
from typer.testing import CliRunner

from craftlora.catalog.workspace import Workspace
from craftlora.cli.main import app
from craftlora.generate.plan_model import (
    GenerationSettings,
    Plan,
    PlanEntry,
    PlanSet,
    load_plan,
    save_plan,
)
from craftlora.generate.prompts import PromptSpec
from craftlora.generate.runner import plan_jobs
from craftlora.models.tiny import TinySpec, save_tiny_pipeline

torch.set_num_threads(1)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
PER_ENTRY = 4


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny model folder and a plan of 2 entries × 4 images, made once for the module."""
    root = tmp_path_factory.mktemp("genfaults")
    model = save_tiny_pipeline(TinySpec(), root / "model", seed=0,
                               corpus=["a red vase", "a blue bowl", "a green vase"])
    plan = Plan(
        generation=GenerationSettings(steps=2, cfg=2.0, sampler="Euler", clip_skip=1,
                                      batch_size=2, width=32, height=32),
        prompt=PromptSpec(),
        sets=[PlanSet(name="syn", entries=[
            PlanEntry(id="a", tier="general", count=PER_ENTRY,
                      attributes={"colour": "red", "shape": "vase"}),
            PlanEntry(id="b", tier="general", count=PER_ENTRY,
                      attributes={"colour": "blue", "shape": "bowl"})])])
    save_plan(plan, root / "plan.toml")
    return {"root": root, "model": model, "plan": root / "plan.toml"}


def _args(ws: Path, world) -> list[str]:
    return ["generate", str(ws), "--plan", str(world["plan"]), "--model", str(world["model"]),
            "--json"]


def _start(ws: Path, world) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "craftlora.cli.main", *_args(ws, world)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _rows(ws: Path) -> int:
    db = sqlite3.connect(f"file:{ws / 'catalog.sqlite'}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM images WHERE origin = 'synthetic'").fetchone()[0]
    finally:
        db.close()


def _assert_complete(ws: Path, world, *, complete: bool = True) -> None:
    """Nothing lost, nothing duplicated, every file its row's bytes, no temps or claims left."""
    with Workspace.open(ws) as w:
        assert w.catalog._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        recs = w.catalog.images(origin="synthetic")
        plan = load_plan(world["plan"])
        planned = {j.path for j in plan_jobs(w, plan, plan.get_set("syn"), None)}
    paths = [r.path for r in recs]
    assert len(paths) == len(set(paths))  # nothing twice
    assert set(paths) <= planned and (set(paths) == planned or not complete)
    for r in recs:
        assert hashlib.sha256((ws / r.path).read_bytes()).hexdigest() == r.sha256, r.path
    files = {p.relative_to(ws).as_posix() for p in (ws / "synthetic").rglob("*")
             if p.is_file() and ".claims" not in p.parts}
    assert files == set(paths)  # no file without its row, no temp file
    claims = ws / "synthetic" / "syn" / ".claims"
    assert not claims.is_dir() or not [p for p in claims.iterdir() if not p.name.startswith(".")]


@pytest.mark.parametrize("trial", [0, 1])
def test_sigkill_mid_generate_then_resume_completes_the_plan(world, tmp_path, trial):
    ws = build_workspace(tmp_path / "ws", n=3)
    at = random.Random(f"gen-kill-{trial}").randint(1, PER_ENTRY)  # ≥ 2 batches still to make
    proc = _start(ws, world)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and _rows(ws) < at:
        time.sleep(0.01)
    assert proc.poll() is None, f"ended before {at} rows: {proc.communicate()[1][-2000:]}"
    proc.kill()
    proc.wait()
    r = CliRunner().invoke(app, _args(ws, world))
    assert r.exit_code == 0, r.stderr
    _assert_complete(ws, world)


def test_two_generates_on_one_plan_share_it(world, tmp_path):
    ws = build_workspace(tmp_path / "ws", n=3)
    procs = [_start(ws, world), _start(ws, world)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert "Traceback" not in err
    made = [json.loads(out)["made"] for out, _ in outs]
    assert sum(made) == 2 * PER_ENTRY  # each image made by exactly one of them
    _assert_complete(ws, world)


def test_disk_full_one_line_nothing_half_written_then_rerun_completes(world, tmp_path, fx):
    with fx.mounted(tmp_path / "disk", "size=2m") as disk:
        ws = build_workspace(disk / "ws", n=3)
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (free - 80 * 1024))  # room for the catalog and a few images
        res = CliRunner().invoke(app, _args(ws, world))
        lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
        assert res.exit_code != 0 and len(lines) == 1, res.stderr
        assert "full" in lines[0] or "space" in lines[0], lines[0]
        assert "Traceback" not in res.stderr
        _assert_complete(ws, world, complete=False)
        filler.unlink()
        assert CliRunner().invoke(app, _args(ws, world)).exit_code == 0
        _assert_complete(ws, world)
