"""The trainer with sd-scripts' targets (conv layers too): its kohya file has sd-scripts' module
set, honest metadata, and loads back onto a fresh model to the trained adapter's outputs."""

from __future__ import annotations

import json

import torch
from tiny_train import build_workspace, write_config

from craftlora.models.kohya_names import sd_scripts_modules
from craftlora.models.loader import load_components
from craftlora.models.lora import read_lora_file
from craftlora.models.lora_import import load_lora, pipeline_models
from craftlora.models.tiny import TinySpec, save_tiny_pipeline
from craftlora.train.config import load_train_config
from craftlora.train.trainer import train

torch.set_num_threads(1)


@torch.no_grad()
def _outputs(models) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 600, (1, 16), generator=g)
    ctx = models["text_encoder"](ids).last_hidden_state
    x = torch.randn(1, 4, 16, 16, generator=g)
    return {"text_encoder": ctx,
            "unet": models["unet"](x, 400, encoder_hidden_states=ctx).sample}


def test_trained_sd_scripts_conv_lora_round_trips(tmp_path):
    model = save_tiny_pipeline(TinySpec(), tmp_path / "model", seed=0,
                               corpus=["a red vase", "a blue bowl", "a green vase"])
    ws = build_workspace(tmp_path / "ws")
    cfg = load_train_config(write_config(
        tmp_path / "c.toml", model, ws, tmp_path / "out", max_steps=2, checkpoint_every=10,
        **{"lora.target_modules": ["sd-scripts+conv"], "lora.text_encoder": True,
           "lora.text_encoder_targets": ["sd-scripts"], "lora.text_encoder_alpha": 2.0}))
    comp = load_components(model)
    result = train(cfg, components=comp)
    trained = pipeline_models(comp)
    for m in trained.values():
        m.eval()
    sd, meta = read_lora_file(result["outputs"]["lora_kohya"])

    fresh = pipeline_models(load_components(model))
    expected = {f"lora_{'unet' if p == 'unet' else 'te'}_"
                + (m if p == "unet" else "text_model." + m).replace(".", "_")
                for p, mod in fresh.items() for m in sd_scripts_modules(mod, conv=p == "unet")}
    assert {k.split(".")[0] for k in sd} == expected
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "Dynamic"  # 8 vs 2
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": "4", "conv_alpha": "8.0"}
    assert json.loads(meta["craftlora_network_parts"])["text_encoder"]["linear_alphas"] == [2.0]

    reference = _outputs(trained)
    plain = _outputs(fresh)
    load_lora(fresh, result["outputs"]["lora_kohya"])
    got = _outputs(fresh)
    for p in reference:
        assert (reference[p] - plain[p]).abs().max() > 1e-4, p  # training moved it
        assert (got[p] - reference[p]).abs().max().item() <= 1e-5, p
