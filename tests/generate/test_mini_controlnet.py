"""The mini outline ControlNet recipe on a tiny random base: resume, ship, measure, load."""

from __future__ import annotations

import json

import pytest
from recipe_loader import load_recipe
from safetensors.torch import load_file

from craftlora.generate.controlnet import load_controlnet, shipped_segmenter
from craftlora.mini.outlines import measure_mini_controlnet, mini_outline_triples
from craftlora.models.condition import SketchError
from craftlora.train.controlnet import ControlNetTrainConfig, train_controlnet

build = load_recipe("build_mini_controlnet").build

pytest.importorskip("craftlora.mini.vessel")


def _weights(folder):
    return load_file(str(folder / "diffusion_pytorch_model.safetensors"))


def test_resumed_training_equals_uninterrupted(tmp_path, gen_tiny_pipe):
    triples = mini_outline_triples(6, seed=0, size=16)
    cfg = ControlNetTrainConfig(steps=4, batch_size=2, lr=1e-3, checkpoint_every=1, log_every=1)
    whole = train_controlnet(
        gen_tiny_pipe, triples, tmp_path / "a", cfg, work_dir=tmp_path / "wa", progress=False
    )
    paused = train_controlnet(
        gen_tiny_pipe, triples, tmp_path / "b", cfg, work_dir=tmp_path / "wb",
        progress=False, stop_after=2,
    )
    assert paused == {"stopped_at": 2} and not (tmp_path / "b").exists()
    resumed = train_controlnet(
        gen_tiny_pipe, triples, tmp_path / "b", cfg, work_dir=tmp_path / "wb", progress=False
    )
    assert resumed["resumed_from"] == 2 and resumed["loss_curve"] == whole["loss_curve"]
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    other = cfg.model_copy(update={"lr": 5e-4})
    with pytest.raises(ValueError, match="another config"):
        train_controlnet(
            gen_tiny_pipe, triples, tmp_path / "c", other, work_dir=tmp_path / "wb",
            progress=False,
        )


def test_build_ships_and_measures(tmp_path, gen_tiny_pipe):
    cfg = ControlNetTrainConfig(steps=2, batch_size=2, lr=1e-3, timesteps="cubic", log_every=1)
    kw = dict(pool=6, config=cfg, eval_images=2, eval_steps=2, segmenter_images=16,
              segmenter_steps=4, progress=False)
    card = build(gen_tiny_pipe, tmp_path / "work", tmp_path / "out", **kw)
    out = tmp_path / "out"
    assert (out / "controlnet" / "config.json").is_file()
    assert (out / "controlnet" / "diffusion_pytorch_model.safetensors").is_file()
    assert shipped_segmenter(out / "controlnet") == out / "silhouette.safetensors"
    shipped = json.loads((out / "card.json").read_text())
    assert shipped["contour_f1"] == card["contour_f1"] and 0.0 <= card["contour_f1"] <= 1.0
    assert shipped["eval"]["n"] == 2 and len(shipped["eval"]["per_image"]) == 2
    assert 0.0 <= shipped["eval"]["baseline"]["contour_f1"] <= 1.0
    readme = (out / "README.md").read_text()
    assert "2 steps, batch 2" in readme and f"{card['contour_f1']:.3f}" in readme
    assert card["segmenter"]["trained_on_vae"] and "through the base's VAE first" in readme
    # a rerun finds every stage done and trains nothing
    mtime = (tmp_path / "work" / "controlnet" / "train.json").stat().st_mtime
    again = build(gen_tiny_pipe, tmp_path / "work", None, **kw)
    assert again["contour_f1"] == card["contour_f1"]
    assert (tmp_path / "work" / "controlnet" / "train.json").stat().st_mtime == mtime
    # the demo's measure: folder with its card → the training seeds are refused
    res = measure_mini_controlnet(gen_tiny_pipe, out / "controlnet", n=2, seed=7, steps=2,
                                  baseline=False)
    assert res["n"] == 2 and res["baseline"] is None and 0.0 <= res["contour_f1"] <= 1.0
    assert set(res["quantiles"]) == {"min", "p10", "p25", "p75", "max"}
    assert 0.0 <= res["vae_ceiling_f1"] <= 1.0
    with pytest.raises(ValueError, match="seed 0 made the training renders"):
        measure_mini_controlnet(gen_tiny_pipe, out / "controlnet", n=1, seed=0, steps=1)
    # the shipped layout (folder with controlnet/ inside) loads as a ControlNet too
    assert list(load_controlnet(out).config.conditioning_embedding_out_channels) == [16, 32]


def test_missing_controlnet_is_a_clear_error(tmp_path):
    with pytest.raises(SketchError, match="ControlNet not found"):
        load_controlnet(tmp_path / "nope")


def test_outline_fill_condition_encloses_the_region(tmp_path):
    import numpy as np

    from craftlora.generate.controlnet import controlnet_condition
    from craftlora.models.condition import condition_array, filled, outline

    mask = np.zeros((12, 12), bool)
    mask[3:9, 2:10] = True
    edges = outline(mask)
    assert (filled(edges) == mask).all()
    open_stroke = edges.copy()
    open_stroke[3, 4:8] = False  # a gap: nothing is enclosed any more
    assert (filled(open_stroke) == open_stroke).all()
    both = condition_array(edges, "outline+fill")
    assert both.shape == (12, 12, 3) and both.dtype == np.uint8
    assert (both[..., 0] == 255 * edges).all() and (both[..., 1] == 255 * mask).all()
    assert (condition_array(edges)[..., 1] == 255 * edges).all()
    with pytest.raises(SketchError, match="condition must be one of"):
        condition_array(edges, "filled")
    (tmp_path / "craftlora_condition.json").write_text('{"condition": "outline+fill"}')
    assert controlnet_condition(tmp_path) == "outline+fill"
    assert controlnet_condition(tmp_path / "elsewhere") == "outline"


def test_fill_trained_controlnet_records_its_condition(tmp_path, gen_tiny_pipe):
    triples = mini_outline_triples(4, seed=0, size=16)
    cfg = ControlNetTrainConfig(steps=1, batch_size=2, condition="outline+fill")
    train_controlnet(gen_tiny_pipe, triples, tmp_path / "cn", cfg, progress=False)
    cn = load_controlnet(tmp_path / "cn")
    assert cn.craftlora_condition == "outline+fill"
