"""The one loader: diffusers folder, tokenizer, refused and offline sources."""

from __future__ import annotations

import shutil

import pytest
import torch

from craftlora.models.loader import (
    ModelSourceError,
    SourceInfo,
    load_components,
    locate_source,
    looks_like_path,
)
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
    with pytest.raises(ModelSourceError, match="no such model file"):
        load_components(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelSourceError, match="not a readable safetensors"):
        load_components(tmp_path / "bad.safetensors", allow_network=False)


@pytest.mark.parametrize(("src", "is_path"), [
    ("./models/sd15", True), ("/abs/model", True), ("~/m", True), ("model.safetensors", True),
    ("models/x/y", True), ("sd15", True), ("runwayml/stable-diffusion-v1-5", False),
    ("owner/name", False)])
def test_a_string_is_a_hub_id_only_when_it_reads_owner_name(src, is_path):
    assert looks_like_path(src) is is_path


def test_missing_paths_are_named_and_a_folder_is_checked_without_loading(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for src in ("./models/sd15", "sd15", "models/x/y"):
        with pytest.raises(ModelSourceError, match="no such model folder or file"):
            load_components(src, allow_network=True)  # a path: never sent to the hub
    with pytest.raises(ModelSourceError, match="no such model folder or file.*offline"):
        load_components("models/x", allow_network=False)
    folder = save_tiny_pipeline(TinySpec(), tmp_path / "m", seed=0)
    assert locate_source(folder) == SourceInfo("folder", str(folder), "sd")
    (folder / "vae" / "diffusion_pytorch_model.safetensors").rename(
        folder / "vae" / "diffusion_pytorch_model.bin")
    with pytest.raises(ModelSourceError, match=r"vae/diffusion_pytorch_model\.bin: pickle"):
        load_components(folder)
    shutil.rmtree(folder / "unet")
    with pytest.raises(ModelSourceError, match="no unet/ folder"):
        locate_source(folder)
