"""Two-process accelerate run, and full fine-tuning mode."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from craftlora.models.loader import load_components
from craftlora.train.config import load_train_config
from craftlora.train.trainer import train

torch.set_num_threads(1)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


def _accelerate() -> str:
    exe = Path(sys.executable).with_name("accelerate")
    if not exe.is_file():
        exe = shutil.which("accelerate")
    if exe is None:
        pytest.skip("accelerate launcher not installed")
    return str(exe)


def test_two_process_cpu_run_equals_one_process_with_the_global_batch(
        tiny_model_dir, tiny_workspace, tmp_path, train_helpers):
    # Adam divides by sqrt(v): near-zero gradients make the first steps ±lr whatever their
    # rounding, so eps = 1 keeps the comparison well conditioned (then it is SGD-like).
    over = {"max_steps": 4, "optim.eps": 1.0, "optim.lr": 0.5,
            "loss.multires_noise_iterations": 3}  # its draws too are per sample
    two = train_helpers.write_config(tmp_path / "two.toml", tiny_model_dir, tiny_workspace,
                                     tmp_path / "two", batch_size=2, **over)
    one = train_helpers.write_config(tmp_path / "one.toml", tiny_model_dir, tiny_workspace,
                                     tmp_path / "one", batch_size=4, **over)
    # accelerate 1.15 runs `launch --cpu --num_processes 2` as ONE process unless an MPI
    # hostfile is given; two real CPU processes (torch.distributed, gloo) come from the
    # multi-process launcher with ACCELERATE_USE_CPU=1. run.json proves the count below.
    proc = subprocess.run(
        [_accelerate(), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no",
         "-m", "craftlora.cli.train", "train", str(two), "--json"],
        env={**ENV, "ACCELERATE_USE_CPU": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    train(load_train_config(one))
    a = load_file(str(tmp_path / "two" / "lora" / "pytorch_lora_weights.safetensors"))
    b = load_file(str(tmp_path / "one" / "lora" / "pytorch_lora_weights.safetensors"))
    assert a.keys() == b.keys()
    assert any(v.abs().sum() > 0 for k, v in a.items() if "lora_B" in k)
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)
    import json

    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["processes"] == 2 and run["step"] == 4


def test_full_mode_trains_the_unet_and_writes_a_loadable_model(
        tiny_model_dir, tiny_workspace, tmp_path, train_helpers):
    cfg = load_train_config(train_helpers.write_config(
        tmp_path / "c.toml", tiny_model_dir, tiny_workspace, tmp_path / "out", mode="full",
        max_steps=2, train_text_encoder=True, **{"loss.min_snr_gamma": 5.0,
                                                 "loss.noise_offset": 0.05}))
    result = train(cfg)
    folder = Path(result["outputs"]["model"])
    trained, base = load_components(folder), load_components(tiny_model_dir)
    diff_unet = [k for k, v in trained.unet.state_dict().items()
                 if not torch.equal(v, base.unet.state_dict()[k])]
    assert len(diff_unet) > 0.5 * len(base.unet.state_dict())
    assert any(not torch.equal(v, base.text_encoder.state_dict()[k])
               for k, v in trained.text_encoder.state_dict().items())
    for k, v in trained.vae.state_dict().items():
        assert torch.equal(v, base.vae.state_dict()[k])
