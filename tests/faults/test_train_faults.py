"""Faults of ``craftlora train``: SIGKILL inside a checkpoint write, a full disk, a poisoned
``rng.pt``, an escaping output name, pickle weights in a model folder, a missing model path.

Each run ends either like an uninterrupted run (resumed: the same LoRA, every step logged once)
or with one ``error:`` line that names the file; nothing outside ``output_dir`` is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_train import build_workspace, write_config
from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.models.tiny import TinySpec, save_tiny_pipeline
from craftlora.train import checkpoint as ckpt
from craftlora.train.config import load_train_config
from craftlora.train.trainer import train

torch.set_num_threads(1)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
RUN = {"max_steps": 6, "checkpoint_every": 2, "keep_last": 2, "lora.dropout": 0.1}

# Runs the CLI with one checkpoint-writing step patched to SIGKILL the process at checkpoint k.
KILLER = r'''
import os, signal, sys
import craftlora.train.checkpoint as ck
point, k = sys.argv[1], int(sys.argv[2])
calls = {"n": 0}
def die(): os.kill(os.getpid(), signal.SIGKILL)
def wrap(orig, hit):
    def f(*a, **kw):
        if hit(*a, **kw):
            calls["n"] += 1
            if calls["n"] == k:
                if point == "half-trainable":
                    open(a[1], "wb").write(b"\0" * 1000)  # a torn file, then the kill
                die()
        return orig(*a, **kw)
    return f
if point in ("trainable", "half-trainable"):
    ck.save_file = wrap(ck.save_file, lambda *a, **kw: True)
elif point == "rng":
    ck.torch.save = wrap(ck.torch.save, lambda obj, p, **kw: str(p).endswith("rng.pt"))
elif point == "marker":
    ck._fsync_file = wrap(ck._fsync_file, lambda p: p.name == ck.MARKER)
elif point == "renamed":  # after the rename, before verification and pruning
    ck._fsync_dir = wrap(ck._fsync_dir, lambda p: p.name == "checkpoints")
from craftlora.cli.main import app
app(sys.argv[3:], prog_name="craftlora")
'''
POINTS = ("trainable", "half-trainable", "rng", "marker", "renamed")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny model, a workspace and the uninterrupted run's LoRA, made once for the module."""
    root = tmp_path_factory.mktemp("trainfaults")
    model = save_tiny_pipeline(TinySpec(), root / "model", seed=0,
                               corpus=["a red vase", "a blue bowl", "a green vase"])
    ws = build_workspace(root / "ws")
    ref = write_config(root / "ref.toml", model, ws, root / "ref", **RUN)
    train(load_train_config(ref))
    return {"root": root, "model": model, "ws": ws, "lora": _lora(root / "ref")}


def _lora(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "t.safetensors"))


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _one_error_line(result, *words: str) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip().startswith("error:")]
    assert result.exit_code != 0, result.stdout
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def _assert_like_reference(world, out: Path) -> None:
    got = _lora(out)
    assert got.keys() == world["lora"].keys()
    for k, v in world["lora"].items():
        torch.testing.assert_close(got[k], v, atol=1e-6, rtol=0)
    steps = [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, RUN["max_steps"] + 1))  # every step once: nothing repeated
    left = [p.name for p in (out / "checkpoints").iterdir() if not ckpt.verify(p)]
    assert left == []  # no torn or temp folder survives the resume
    assert [s for s, _ in ckpt.complete_checkpoints(out / "checkpoints")] == [4, 6]


@pytest.mark.parametrize("trial", [0, 1])
def test_sigkill_inside_a_checkpoint_write_then_resume_equals_uninterrupted(world, trial):
    rng = random.Random(f"train-kill-{trial}")
    point, k = rng.choice(POINTS[trial::2] or POINTS), rng.choice([1, 2])
    out = world["root"] / f"kill{trial}"
    cfg = write_config(world["root"] / f"kill{trial}.toml", world["model"], world["ws"], out,
                       **RUN)
    killer = world["root"] / "killer.py"
    killer.write_text(KILLER)
    p = subprocess.run([sys.executable, str(killer), point, str(k), "train", str(cfg)], env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, f"{point} {k}: {p.stderr[-2000:]}"  # killed where we meant
    assert not (out / "t.safetensors").exists()
    r = _cli("train", cfg, "--resume", "latest")
    assert r.exit_code == 0, r.stderr
    _assert_like_reference(world, out)


def test_disk_full_mid_run_one_line_then_resume_after_freeing_space(world, tmp_path, fx):
    with fx.mounted(tmp_path / "disk", "size=1m") as disk:
        out = disk / "out"  # two checkpoints (~380 KB each) fit, the third does not
        cfg = write_config(tmp_path / "full.toml", world["model"], world["ws"], out, **RUN)
        line = _one_error_line(_cli("train", cfg), "step-00000006", "no space left")
        assert [s for s, _ in ckpt.complete_checkpoints(out / "checkpoints")] == [2, 4]
        assert all(ckpt.verify(p) for _, p in ckpt.complete_checkpoints(out / "checkpoints"))
        assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".tmp")], line
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        assert _cli("train", cfg, "--resume", "latest").exit_code == 0
        _assert_like_reference(world, out)


class _Payload:
    """Unpickling this would create a file; weights_only loading must refuse it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_payload_in_rng_pt_is_refused_in_one_line(world, tmp_path):
    out = tmp_path / "out"
    cfg = write_config(tmp_path / "c.toml", world["model"], world["ws"], out,
                       **{**RUN, "max_steps": 2})
    assert _cli("train", cfg).exit_code == 0
    folder = ckpt.latest(out / "checkpoints")
    marker = tmp_path / "PWNED"
    with open(folder / "rng.pt", "wb") as f:
        pickle.dump([{"torch": _Payload(marker)}], f)
    done = json.loads((folder / ckpt.MARKER).read_text())  # the attacker fixes the hashes too
    done["files"]["rng.pt"] = hashlib.sha256((folder / "rng.pt").read_bytes()).hexdigest()
    (folder / ckpt.MARKER).write_text(json.dumps(done))
    _one_error_line(_cli("train", cfg, "--resume", "latest", "--set", "max_steps=4"),
                    f"{folder / 'rng.pt'}: refused")
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../../escaped", "ABSOLUTE", "a/b", ".."])
def test_an_output_name_outside_output_dir_is_refused_naming_file_and_key(world, tmp_path, name):
    name = str(tmp_path / "abs-escaped") if name == "ABSOLUTE" else name
    cfg = write_config(tmp_path / "c.toml", world["model"], world["ws"], tmp_path / "o" / "out",
                       name=name)
    _one_error_line(_cli("train", cfg), str(cfg), "name", "bare file name")
    assert [p.name for p in tmp_path.iterdir()] == ["c.toml"]  # nothing written anywhere


def test_pickle_weights_in_a_model_folder_are_refused(world, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(world["model"], model)
    unet = model / "unet" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(str(unet)), unet.with_suffix(".bin"))
    unet.unlink()
    cfg = write_config(tmp_path / "c.toml", model, world["ws"], tmp_path / "out")
    for args in (("--check",), ()):
        line = _one_error_line(_cli("train", cfg, *args), "diffusion_pytorch_model.bin",
                               "pickle", "safe_serialization=True")
        assert "Traceback" not in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("model", ["./models/sd15", "models/x", "sd15"])
def test_a_missing_model_path_is_named_and_never_sent_to_the_hub(world, tmp_path, monkeypatch,
                                                                  model):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = write_config(tmp_path / "c.toml", model, world["ws"], tmp_path / "out")
    r = _cli("train", cfg, "--check")
    line = _one_error_line(r, "models/x" if model == "models/x" else model.lstrip("./"))
    assert "no such model folder or file" in line or "offline" in line
    assert not (tmp_path / "out").exists()
