"""Pre-flight checks (``train --check``) and the CLI's promises: checks before any weights are
read, paths from the shell against the current folder, the next command named at the end."""

from __future__ import annotations

import json
import shutil
import time

import torch
from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.train.config import load_train_config
from craftlora.train.steps import StepLog
from craftlora.train.trainer import train

torch.set_num_threads(1)


def _cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_check_reports_output_model_and_data(tiny_model_dir, tiny_workspace, tmp_path,
                                             train_helpers):
    cfg = train_helpers.write_config(tmp_path / "c.toml", tiny_model_dir, tiny_workspace,
                                     tmp_path / "out")
    r = _cli("train", cfg, "--check", "--json")
    assert r.exit_code == 0, r.stderr
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert all(c["ok"] for c in checks.values()) and set(checks) == {"output", "model", "data"}
    assert checks["model"]["detail"] == f"{tiny_model_dir} (folder, sd)"
    assert checks["data"]["detail"].startswith("6 images with split='train'")
    assert not (tmp_path / "out").exists()  # a check writes nothing


def test_no_train_split_fails_before_the_model_is_read(tiny_model_dir, tmp_path, train_helpers):
    ws = train_helpers.build_workspace(tmp_path / "ws", n=2)
    broken = tmp_path / "model"  # a model whose weights cannot load: reading them would fail
    shutil.copytree(tiny_model_dir, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not weights")
    cfg = train_helpers.write_config(tmp_path / "c.toml", broken, ws, tmp_path / "out",
                                     **{"data.split": "val"})
    t0 = time.perf_counter()
    r = _cli("train", cfg)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and lines == [f"error: {ws}: no images with split='val', "
                                          "origin='real'"], r.stderr
    assert time.perf_counter() - t0 < 5
    r = _cli("train", cfg, "--check")
    assert r.exit_code == 2 and "ok   model" in r.stdout and "fail data" in r.stdout


def test_set_paths_resolve_against_the_shell_and_the_next_command_is_named(
        tiny_model_dir, tiny_workspace, tmp_path, train_helpers, monkeypatch):
    (tmp_path / "cfgs").mkdir()
    train_helpers.write_config(tmp_path / "cfgs" / "c.toml", tiny_model_dir,
                               tiny_workspace, tmp_path / "cfgs" / "out", max_steps=1)
    monkeypatch.chdir(tmp_path)
    r = _cli("train", "cfgs/c.toml", "--set", "output_dir=runs/a")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "runs" / "a" / "t.safetensors").is_file()
    assert not (tmp_path / "cfgs" / "runs").exists()
    assert f"--lora-dir {tmp_path / 'runs' / 'a'}" in r.stdout
    assert "<lora:t:1>" in r.stdout and r.stdout.count("next: craftlora generate") == 1


def test_resume_cuts_the_log_back_to_the_checkpoint(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"step": s}) + "\n" for s in range(1, 7)) + '{"step": 7')
    StepLog(log, 0.0, None, False).trim(4)
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [1, 2, 3, 4]


def test_a_run_without_checkpoints_restarted_fresh_does_not_repeat_its_log(
        tiny_model_dir, tiny_workspace, tmp_path, train_helpers):
    cfg = load_train_config(train_helpers.write_config(
        tmp_path / "c.toml", tiny_model_dir, tiny_workspace, tmp_path / "out", max_steps=2,
        checkpoint_every=10))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "log.jsonl").write_text('{"step": 1}\n{"step": 2}\n{"st')  # a killed run
    train(cfg)
    lines = (tmp_path / "out" / "log.jsonl").read_text().splitlines()
    steps = [json.loads(x)["step"] for x in lines]
    assert steps == [1, 2]
