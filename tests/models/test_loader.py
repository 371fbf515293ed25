"""The one loader: diffusers folder, tokenizer, refused and offline sources."""

from __future__ import annotations

import pytest
import torch

from craftlora.models.loader import ModelSourceError, load_components
from craftlora.models.tiny import TinySpec, save_tiny_pipeline
from craftlora.models.tokenizer import build_clip_tokenizer, load_clip_tokenizer

torch.set_num_threads(1)


def test_clip_style_tokenizer(tmp_path):
    build_clip_tokenizer(["a red vase on a wooden table", "celadon glaze bowl"] * 5, tmp_path,
                         vocab_size=600, max_length=12)
    tok = load_clip_tokenizer(tmp_path)
    assert type(tok).__name__ == "CLIPTokenizer"
    ids = tok("A red VASE, celadon!", padding="max_length", max_length=12).input_ids
    toks = tok.convert_ids_to_tokens(ids)
    assert toks[0] == "<|startoftext|>" and toks[1:4] == ["a</w>", "red</w>", "vase</w>"]
    assert toks[5] == "celadon</w>" and toks[-1] == "<|endoftext|>"
    tok.save_pretrained(tmp_path / "again")
    assert load_clip_tokenizer(tmp_path / "again")("a red vase").input_ids == \
        tok("a red vase").input_ids


def test_diffusers_folder_round_trip(tmp_path):
    folder = save_tiny_pipeline(TinySpec(), tmp_path / "m", seed=0)
    comp = load_components(folder)
    assert comp.kind == "sd" and comp.prediction_type == "epsilon"
    assert comp.vae_scale_factor == 2 and comp.unet.config.sample_size == 16
    again = load_components(folder)
    for (k, a), (_, b) in zip(comp.unet.state_dict().items(), again.unet.state_dict().items(),
                              strict=True):
        assert torch.equal(a, b), k
    img = comp.pipeline()("a red vase", num_inference_steps=2, height=32, width=32,
                          output_type="np").images
    assert img.shape == (1, 32, 32, 3)


def test_refused_and_offline_sources(tmp_path, monkeypatch):
    (tmp_path / "model.ckpt").write_bytes(b"x")
    with pytest.raises(ModelSourceError, match="pickle"):
        load_components(tmp_path / "model.ckpt")
    with pytest.raises(ModelSourceError, match="no model_index.json"):
        load_components(tmp_path)
    with pytest.raises(ModelSourceError, match="offline"):
        load_components("runwayml/stable-diffusion-v1-5", allow_network=False)
    with pytest.raises(ModelSourceError, match="not found"):
        load_components(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelSourceError, match="not a readable safetensors"):
        load_components(tmp_path / "bad.safetensors", allow_network=False)
