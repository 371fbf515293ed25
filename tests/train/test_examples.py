"""Every shipped train preset loads, and each carries the settings its study names."""

from __future__ import annotations

from pathlib import Path

import pytest

from craftlora.train.config import load_train_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PRESETS = sorted(EXAMPLES.glob("lora-*.toml"))


def test_the_four_presets_are_shipped():
    assert {p.stem for p in PRESETS} >= {"lora-mini", "lora-porcelain", "lora-lacquer",
                                          "lora-character"}


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_every_preset_loads(path):
    cfg = load_train_config(path)
    assert cfg.mode == "lora"
    assert cfg.output_dir.is_absolute() and cfg.data.workspace.is_absolute()
    assert cfg.output_dir.is_relative_to(EXAMPLES.parent)  # relative to the file, not the cwd
    assert cfg.max_steps >= 100 and cfg.lora.rank >= 1 and cfg.optim.lr <= 2e-3


def test_mini_preset_is_the_demo_lora(tmp_path):
    from craftlora.demo.settings import preset
    from craftlora.demo.steps import lora_config

    got = load_train_config(EXAMPLES / "lora-mini.toml")
    want = lora_config(tmp_path, preset("full"))
    assert got.model == want.model == "mini"
    skip = {"output_dir", "data", "validation"}
    assert got.model_dump(exclude=skip) == want.model_dump(exclude=skip)
    assert got.data.model_dump(exclude={"workspace"}) == want.data.model_dump(exclude={"workspace"})
    assert got.data.workspace.parts[-2:] == ("demo-out", "workspace")


def test_study_numbers():
    lac = load_train_config(EXAMPLES / "lora-lacquer.toml")
    assert (lac.lora.rank, lac.lora.alpha, lac.optim.lr, lac.max_steps) == (64, 64.0, 1e-4, 12000)
    assert lac.batch_size * lac.grad_accum == 16
    assert lac.loss.perceptual_weight == 0.3 and lac.data.specular_alpha == 0.7
    por = load_train_config(EXAMPLES / "lora-porcelain.toml")
    assert por.model.endswith(".safetensors") and por.model_config_dir is not None
    assert por.data.resolution == 512 and por.batch_size * por.grad_accum == 16
    char = load_train_config(EXAMPLES / "lora-character.toml")
    assert char.data.resolution == 1024 and (char.lora.rank, char.lora.alpha) == (32, 16.0)
    assert char.max_steps * char.batch_size == 4800  # 48 images x 10 repeats x 10 epochs
