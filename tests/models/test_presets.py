"""Model-family presets: the registry, and the family read from a source without its weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from craftlora.demo.settings import GenerationPreset
from craftlora.generate.samplers import resolve_sampler
from craftlora.models import loader
from craftlora.models.presets import (
    MINI_BASE,
    MINI_NAMES,
    PresetError,
    get_preset,
    model_family,
    preset_for,
    preset_names,
    presets_help,
)


def test_registry_names_and_values():
    assert preset_names() == ["mini", "sd15", "sd2", "sdxl"]
    sd15 = get_preset("sd15")
    assert (sd15.sampler, sd15.cfg, sd15.clip_skip, sd15.resolution) == (
        "DPM++ 2M Karras", 7.0, 2, 512)
    assert (get_preset("sd2").resolution, get_preset("sdxl").resolution) == (768, 1024)
    assert (sd15.train_clip_skip, get_preset("mini").train_clip_skip) == (1, 0)
    assert get_preset("sd2").clip_skip == get_preset("sdxl").clip_skip == 1
    for name in preset_names():  # every preset names a sampler the registry knows
        assert resolve_sampler(get_preset(name).sampler).name == get_preset(name).sampler
    with pytest.raises(PresetError, match="sd3.*presets: mini, sd15, sd2, sdxl"):
        get_preset("sd3")
    assert presets_help().startswith("mini: DDIM, CFG 1.75; SD 1.5: DPM++ 2M Karras, CFG 7")


def test_mini_preset_is_the_demos_measured_setting():
    demo = GenerationPreset()
    mini = preset_for("mini")
    assert (mini.sampler, mini.steps, mini.cfg, mini.clip_skip) == (
        demo.sampler, demo.steps, demo.cfg, demo.clip_skip)
    assert MINI_NAMES == loader.MINI_NAMES and MINI_BASE == loader.MINI_BASE
    assert model_family("mini-base") == "mini"
    if (MINI_BASE / "model_index.json").is_file():
        assert model_family(MINI_BASE) == "mini"


def _folder(tmp_path, name, unet, index=None):
    f = tmp_path / name
    (f / "unet").mkdir(parents=True)
    (f / "model_index.json").write_text(json.dumps(index or {"_class_name": "X"}))
    (f / "unet" / "config.json").write_text(json.dumps(unet))
    return f


def test_family_of_a_diffusers_folder(tmp_path):
    assert model_family(_folder(tmp_path, "a", {"cross_attention_dim": 768})) == "sd15"
    assert model_family(_folder(tmp_path, "b", {"cross_attention_dim": 1024})) == "sd2"
    assert model_family(_folder(tmp_path, "c", {"cross_attention_dim": 2048})) == "sdxl"
    assert model_family(_folder(tmp_path, "d", {"cross_attention_dim": 1280,
                                                "addition_embed_type": "text_time"})) == "sdxl"
    xl = _folder(tmp_path, "e", {}, {"text_encoder_2": ["transformers", "CLIPTextModel"]})
    assert model_family(xl) == "sdxl"
    with pytest.raises(PresetError, match="cross_attention_dim 32 matches no preset"):
        model_family(_folder(tmp_path, "f", {"cross_attention_dim": 32}))
    (tmp_path / "g").mkdir()
    with pytest.raises(PresetError, match="model_index.json: not found"):
        model_family(tmp_path / "g")
    broken = _folder(tmp_path, "h", {})
    (broken / "unet" / "config.json").write_text("{not json")
    with pytest.raises(PresetError, match="not readable"):
        model_family(broken)


def test_a_single_file_that_is_no_checkpoint_is_named(tmp_path):
    """The families themselves are read by ``models.family`` (test_single_file_families)."""
    save_file({"lora_unet_x.alpha": np.zeros((2,), dtype=np.float32)},
              str(tmp_path / "lora.safetensors"))
    with pytest.raises(PresetError, match="lora.safetensors: unknown checkpoint layout"):
        model_family(tmp_path / "lora.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(PresetError, match="not a readable safetensors file"):
        model_family(tmp_path / "bad.safetensors")


def test_hub_ids_and_missing_paths_are_not_guessed(tmp_path):
    for src in ("runwayml/stable-diffusion-v1-5", str(tmp_path / "nope")):
        with pytest.raises(PresetError, match="cannot tell the model family"):
            preset_for(src)
