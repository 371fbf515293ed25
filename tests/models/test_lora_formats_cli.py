"""`craftlora lora check|convert` on a tiny SD model folder: the report, a lossless round trip
kohya → peft → kohya, precision, and one error line for a bad file."""

from __future__ import annotations

import json

import torch
from narrow_sd import attach_sd_scripts_adapter
from safetensors.torch import load_file
from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.models.kohya_names import sd_scripts_modules
from craftlora.models.loader import load_components
from craftlora.models.lora import adapter_config, lora_state_dict, read_lora_file, save_kohya_lora
from craftlora.models.lora_import import pipeline_models
from craftlora.models.tiny import TinySpec, save_tiny_pipeline

torch.set_num_threads(1)


def test_check_and_convert_round_trip(tmp_path):
    model = tmp_path / "model"
    save_tiny_pipeline(TinySpec(), model, seed=0)
    models = pipeline_models(load_components(model))
    attach_sd_scripts_adapter(models, seed=5)
    src = save_kohya_lora(tmp_path / "src.safetensors",
                          {p: (lora_state_dict(m), adapter_config(m)) for p, m in models.items()},
                          unet_config=models["unet"].config, metadata={"ss_seed": 7})
    runner = CliRunner()
    r = runner.invoke(app, ["lora", "check", str(src), "--model", str(model), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["form"] == "kohya" and info["comfyui_unloaded"] == [] and info["base_matches"]
    counts = {p: len(sd_scripts_modules(m, conv=p == "unet")) for p, m in models.items()}
    assert {p: s["modules"] for p, s in info["parts"].items()} == counts
    unet = info["parts"]["unet"]
    assert unet["ranks"] == [2, 4] and unet["alphas"] == [1.0, 8.0] and unet["conv_3x3"] > 0

    peft_dir = tmp_path / "peft"
    r = runner.invoke(app, ["lora", "convert", str(src), str(peft_dir), "--model", str(model),
                            "--form", "peft"])
    assert r.exit_code == 0, r.output
    back = tmp_path / "back.safetensors"
    r = runner.invoke(app, ["lora", "convert", str(peft_dir / "pytorch_lora_weights.safetensors"),
                            str(back), "--model", str(model)])
    assert r.exit_code == 0, r.output
    a, b = load_file(str(src)), load_file(str(back))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    half = tmp_path / "half.safetensors"
    r = runner.invoke(app, ["lora", "convert", str(src), str(half), "--model", str(model),
                            "--precision", "fp16", "--json"])
    assert r.exit_code == 0, r.output
    sd, meta = read_lora_file(half)
    assert {v.dtype for k, v in sd.items() if not k.endswith(".alpha")} == {torch.float16}
    assert meta["ss_seed"] == "7" and meta["ss_network_dim"] == "4"  # kept / derived again
    assert json.loads(meta["craftlora_converted_from"])["file"] == "src.safetensors"

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 16)
    r = runner.invoke(app, ["lora", "check", str(bad), "--model", str(model)])
    assert r.exit_code == 2 and "bad.safetensors" in r.output
    assert r.output.count("error:") == 1
