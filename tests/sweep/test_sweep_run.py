"""A tiny sweep end to end: trained, compared, summarised; killed mid-run, it resumes to the
same sweep.json as an uninterrupted run. About two minutes on a quiet 2-core machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w
from tiny_train import build_workspace, write_config

from craftlora.models.tiny import TinySpec, save_tiny_pipeline
from craftlora.sweep.run import run_sweep
from craftlora.train.config import load_train_config

pytestmark = pytest.mark.slow  # minutes: 4 trainings and 4 compares, then again killed


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    model = save_tiny_pipeline(TinySpec(), root / "model", seed=0,
                               corpus=["a red vase", "a blue bowl", "a green vase"])
    ws = build_workspace(root / "ws")
    write_config(root / "train.toml", model, ws, root / "unused", max_steps=4,
                 checkpoint_every=2)
    (root / "sweep.toml").write_text(tomli_w.dumps({
        "name": "tiny", "base": "train.toml", "seeds": [0, 1],
        "variants": [{"name": "base"}, {"name": "hot", "set": {"optim.lr": 5e-3}},
                     {"name": "cfg3", "set": {"generate.cfg": 3.0}}],
        "bootstrap": 200,
        "evaluate": {"features": "pixels", "lpips_weights": "random", "prompts": 8,
                     "steps": 2, "batch_size": 8},
    }))
    return root / "sweep.toml"


@pytest.fixture(scope="module")
def straight(sweep_file) -> tuple[Path, dict]:
    out = sweep_file.parent / "a"
    return out, run_sweep(sweep_file, out, progress=False)


def test_sweep_figures_reuse_and_best_config(straight):
    out, body = straight
    runs = list((out / "runs").glob("*/seed-*/done.json"))
    assert len(runs) == 4  # cfg3 reuses base's LoRAs: 2 trainings × 2 seeds
    v = body["variants"]
    assert v["cfg3"]["train_key"] == v["base"]["train_key"] != v["hot"]["train_key"]
    fd = v["hot"]["metrics"]["fd"]
    assert len(fd["seeds"]) == 2 and fd["ci_low"] <= fd["mean"] <= fd["ci_high"]
    d = fd["vs_first"]
    base_fd = v["base"]["metrics"]["fd"]["seeds"]
    assert d["delta"] == pytest.approx(fd["mean"] - sum(base_fd) / 2)
    assert "vs_first" not in v["base"]["metrics"]["fd"]
    # the variant named "base" is its LoRA (row lora-base), not the compare's LoRA-free row
    assert list((out / "eval" / "seed-0").glob("*/lora-base/*.png"))
    assert base_fd[0] != base_fd[1]  # each seed's own LoRA
    assert body["feature_space"].startswith("pixels16") and body["lpips_network"] == \
        "lpips-alex-random"
    assert (out / "sweep.html").read_text().count("<h3>") == 3
    best = load_train_config(out / body["best_config"])
    assert best.optim.lr == (5e-3 if body["best"] == "hot" else 1e-3)


def test_killed_sweep_resumes_to_the_same_sweep_json(sweep_file, straight, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.Popen([sys.executable, "-m", "craftlora.cli.main", "sweep", str(sweep_file),
                          "--out", str(tmp_path / "b"), "--json"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:  # kill once the 2nd run is checkpointed
        if len(list((tmp_path / "b" / "runs").glob("*/seed-*/checkpoints/*"))) >= 2 and \
                list((tmp_path / "b" / "runs").glob("*/seed-*/done.json")):
            break
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert not (tmp_path / "b" / "sweep.json").exists(), "killed too late to test resume"
    resumed = run_sweep(sweep_file, tmp_path / "b", progress=False)
    assert resumed == straight[1]
    assert (straight[0] / "sweep.json").read_bytes() == \
        (tmp_path / "b" / "sweep.json").read_bytes()
