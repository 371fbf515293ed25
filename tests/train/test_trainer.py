"""The trainer on a tiny model: LoRA touches only adapters, kill-safe resume, NaN stop, caches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from craftlora.models.loader import load_components
from craftlora.train import checkpoint as ckpt
from craftlora.train.config import TrainConfigError, load_train_config
from craftlora.train.data import TrainDataError
from craftlora.train.trainer import TrainingStopped, train

torch.set_num_threads(1)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


def test_lora_changes_only_adapter_weights(tiny_model_dir, tiny_workspace, tmp_path, train_helpers):
    cfg = load_train_config(train_helpers.write_config(tmp_path / "c.toml", tiny_model_dir, tiny_workspace,  # noqa: E501
                                         tmp_path / "out", max_steps=3, checkpoint_every=10))
    comp = load_components(tiny_model_dir)
    before = {f"{part}.{k}": v.clone() for part, m in
              (("unet", comp.unet), ("vae", comp.vae), ("te", comp.text_encoder))
              for k, v in m.state_dict().items()}
    result = train(cfg, components=comp)
    assert result["status"] == "finished" and result["step"] == 3
    after = {f"{part}.{k}": v for part, m in
             (("unet", comp.unet), ("vae", comp.vae), ("te", comp.text_encoder))
             for k, v in m.state_dict().items()}
    lora_keys = [k for k in after if ".lora_" in k]
    assert lora_keys and all(k.startswith("unet.") for k in lora_keys)
    for k, v in after.items():
        if ".lora_" in k:
            continue
        base = k.replace(".base_layer.", ".")
        assert torch.equal(v.cpu(), before[base]), f"{k} changed"
    lora_b = [k for k in lora_keys if "lora_B" in k]
    assert all(after[k].abs().sum() > 0 for k in lora_b)  # gaussian init: B starts at zero
    # the written files: diffusers form and kohya form with the true alpha (8 ≠ rank 4)
    kohya = load_file(result["outputs"]["lora_kohya"])
    alphas = {float(v) for k, v in kohya.items() if k.endswith(".alpha")}
    assert alphas == {8.0}
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["status"] == "finished" and run["data_hash"] and run["timings"]["train_s"] > 0


def _run_cli(cfg: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "craftlora.cli.train", "train", str(cfg), *extra],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_at(cfg: Path, out: Path, at_step: int, *extra: str) -> None:
    """Start the trainer, SIGKILL it once its log shows ``at_step``."""
    proc = _run_cli(cfg, *extra)
    log = out / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.is_file():
            lines = log.read_text().split("\n")[:-1]  # complete lines only
            if lines and json.loads(lines[-1])["step"] >= at_step:
                break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()[0]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _lora(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "lora" / "pytorch_lora_weights.safetensors"))


def test_sigkill_resume_twice_equals_uninterrupted(tiny_model_dir, tiny_workspace, tmp_path, train_helpers):  # noqa: E501
    over = {"max_steps": 10, "checkpoint_every": 2, "lora.dropout": 0.1}
    straight = train_helpers.write_config(tmp_path / "a.toml", tiny_model_dir, tiny_workspace,
                            tmp_path / "a", **over)
    broken = train_helpers.write_config(tmp_path / "b.toml", tiny_model_dir, tiny_workspace,
                          tmp_path / "b", **over)
    p = _run_cli(straight)
    assert p.wait() == 0, p.communicate()[0]
    _kill_at(broken, tmp_path / "b", 3)
    first = ckpt.latest(tmp_path / "b" / "checkpoints")
    assert first is not None
    _kill_at(broken, tmp_path / "b", 7, "--resume", "latest")
    p = _run_cli(broken, "--resume", "latest", "--json")
    outp = p.communicate()[0]
    assert p.returncode == 0, outp
    a, b = _lora(tmp_path / "a"), _lora(tmp_path / "b")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)
    run_a = json.loads((tmp_path / "a" / "run.json").read_text())
    run_b = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run_a["step"] == run_b["step"] == 10
    assert run_b["resumed_from"] is not None
    steps = [json.loads(x)["step"] for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 11))  # every step logged once, none repeated by a resume
    # only the newest keep_last = 2 complete checkpoints remain
    assert [s for s, _ in ckpt.complete_checkpoints(tmp_path / "b" / "checkpoints")] == [8, 10]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_model_dir, tiny_workspace, tmp_path, train_helpers):  # noqa: E501
    # An absurd learning rate overflows the adapter after a few steps.
    cfg = load_train_config(train_helpers.write_config(
        tmp_path / "c.toml", tiny_model_dir, tiny_workspace, tmp_path / "out", max_steps=30,
        checkpoint_every=1, keep_last=5, **{"optim.lr": 1e36, "optim.max_grad_norm": 1e38,
                                            "lora.init": "default"}))
    with pytest.raises(TrainingStopped, match="non-finite") as ei:
        train(cfg)
    res = ei.value.result
    assert res["status"] == "stopped_nonfinite"
    good = ckpt.latest(tmp_path / "out" / "checkpoints")
    assert good is not None and str(good) == res["last_checkpoint"]
    assert ckpt.verify(good)
    assert int(good.name.split("-")[1]) == res["step"] < 30
    assert not (tmp_path / "out" / "lora").exists()
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["status"] == "stopped_nonfinite"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU rule; a GPU trains fp16")
def test_mixed_precision_on_a_cpu_bf16_trains_fp16_is_refused(
        tiny_model_dir, tiny_workspace, tmp_path, train_helpers):
    # bf16 in its own process: accelerate keeps one precision per process
    bf16 = train_helpers.write_config(
        tmp_path / "b.toml", tiny_model_dir, tiny_workspace, tmp_path / "bf16", max_steps=2,
        mixed_precision="bf16", lora={"rank": 4, "alpha": 8.0, "text_encoder": True})
    proc = _run_cli(bf16)
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    run = json.loads((tmp_path / "bf16" / "run.json").read_text())
    assert run["step"] == 2 and run["device"] == "cpu"
    assert run["config"]["mixed_precision"] == "bf16"
    lora = _lora(tmp_path / "bf16")
    assert lora and all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in lora.values())
    fp16 = train_helpers.write_config(
        tmp_path / "h.toml", tiny_model_dir, tiny_workspace, tmp_path / "fp16", max_steps=2,
        mixed_precision="fp16")
    with pytest.raises(TrainConfigError, match='"fp16" needs a GPU'):
        train(load_train_config(fp16))
    proc = _run_cli(fp16)  # the command names the config file
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0 and f'{fp16}: mixed_precision = "fp16" needs a GPU' in log
    assert not (tmp_path / "fp16" / "checkpoints").exists()


def test_missing_captions_fail_naming_files(tiny_model_dir, tmp_path, train_helpers):
    ws = train_helpers.build_workspace(tmp_path / "ws", n=3, caption=False)
    cfg = load_train_config(train_helpers.write_config(tmp_path / "c.toml", tiny_model_dir, ws,
                                         tmp_path / "out"))
    with pytest.raises(TrainDataError) as ei:
        train(cfg)
    msg = str(ei.value)
    assert "3 training image(s) have no caption" in msg
    for i in range(3):
        assert f"images/{i:03d}.png" in msg


def test_latent_cache_keyed_by_content_and_resolution(tiny_model_dir, tiny_workspace, tmp_path, train_helpers):  # noqa: E501
    def run(name: str, **over) -> dict:
        cfg = load_train_config(train_helpers.write_config(tmp_path / f"{name}.toml", tiny_model_dir,  # noqa: E501
                                             tiny_workspace, tmp_path / name, max_steps=1,
                                             checkpoint_every=5, **over))
        return train(cfg)["cache"]

    assert run("a") == {"latent_hits": 0, "latent_encoded": 6}
    assert run("b") == {"latent_hits": 6, "latent_encoded": 0}
    train_helpers.make_image("red", "bowl", 32, 99).save(tiny_workspace / "images" / "001.png")  # edited  # noqa: E501
    assert run("c") == {"latent_hits": 5, "latent_encoded": 1}
    assert run("d", **{"data.resolution": 16}) == {"latent_hits": 0, "latent_encoded": 6}
