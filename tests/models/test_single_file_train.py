"""LoRA training starts from SD 2.x and SDXL single files offline (configs + vocabulary folder)."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from tiny_families import build_family, config_copy
from tiny_train import build_workspace, write_config

from craftlora.models.ldm_families import save_family_checkpoint
from craftlora.train.config import load_train_config
from craftlora.train.trainer import train


@pytest.mark.parametrize("family", ["sd2", "sdxl"])
def test_lora_trains_from_a_single_file_offline(tmp_path, family, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    pipe, folder = build_family(family, tmp_path / "m", corpus=("a red vase", "a blue bowl"))
    ckpt = save_family_checkpoint(family, pipe.unet, pipe.vae, pipe.text_encoder,
                                  tmp_path / f"{family}.safetensors",
                                  text_encoder_2=getattr(pipe, "text_encoder_2", None))
    config = config_copy(folder, tmp_path / "config", vocab=False)
    ws = build_workspace(tmp_path / "ws", n=4)
    path = write_config(tmp_path / "run.toml", ckpt, ws, tmp_path / "out", max_steps=2,
                        checkpoint_every=2, model_config_dir=str(config),
                        model_tokenizer_dir=str(tmp_path / "m" / "tok"))
    result = train(load_train_config(path))
    assert result["prediction_type"] == ("v_prediction" if family == "sd2" else "epsilon")
    lora = tmp_path / "out" / "t.safetensors"
    with safe_open(str(lora), framework="pt") as f:
        keys = list(f.keys())
        assert keys and all(torch.isfinite(f.get_tensor(k)).all() for k in keys)
