"""`craftlora compare` on a tiny workspace, a tiny base and a tiny LoRA: the JSON's figures,
the ceiling's arithmetic, the HTML grid, and a clear error for a missing LoRA."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from glaze_type_world import build
from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.generate.compare import CompareSettings, compare
from craftlora.metrics.judge import Judge
from craftlora.metrics.sets import load_images
from craftlora.models.classifier import build_classifier, save_classifier
from craftlora.models.loader import load_components
from craftlora.models.lora import adapter_config, add_lora, lora_state_dict, save_diffusers_lora
from craftlora.models.tiny import TinySpec, save_tiny_pipeline


@pytest.fixture
def parts(tmp_path, glaze_type_ws):
    model = save_tiny_pipeline(TinySpec(image_size=16), tmp_path / "model" / "pipe")
    unet = load_components(str(model)).unet
    add_lora(unet, rank=2, alpha=2.0)
    torch.manual_seed(1)
    for name, p in unet.named_parameters():
        if "lora_" in name:
            p.data.normal_(0, 0.5)
    lora = save_diffusers_lora(tmp_path / "lora", {
        "unet": (lora_state_dict(unet), adapter_config(unet))})
    torch.manual_seed(0)
    clf = build_classifier("mobilenet_v3_small", {"glaze": ["white", "celadon", "black"],
                                                  "type": ["bowl", "vase"]},
                           pretrained="none", image_size=16).eval()
    judge = tmp_path / "judge.safetensors"
    save_classifier(judge, clf)
    return glaze_type_ws, model, lora, judge


def test_compare_writes_figures_and_a_grid(tmp_path, parts):
    ws, model, lora, judge = parts
    out = tmp_path / "cmp"
    args = ["compare", str(ws.root), "--model", str(model), "--lora", str(lora),
            "--vs-lora", str(lora), "--prompts", "4", "--judge", str(judge), "--steps", "2",
            "--size", "16", "--sampler", "DDIM", "--cfg", "1.75", "--clip-skip", "1",
            "--out", str(out), "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads((out / "compare.json").read_text())
    assert res["prompts"] == 4
    assert res["settings"]["loras"] == {"lora": str(lora), "vs_lora": str(lora)}
    assert res["reference"] == {"set": "real test split", "n": 12, "skipped": []}
    assert "domain" in res["judge"]["feature_space"]
    for row in ("base", "lora", "judge_ceiling", "decoder_ceiling"):
        fig = res[row]
        assert fig["n"] == 4 and math.isfinite(fig["fd_domain"]) and fig["fd_domain"] >= 0
        assert 0.0 <= fig["combo_agreement"] <= fig["glaze_type_agreement"] <= 1.0
        assert fig["pair_agreement"] == fig["glaze_type_agreement"]
    assert res["pair"] == ["glaze", "type"]  # the default pair when the judge reads both
    assert res["base"]["fd_domain"] != res["lora"]["fd_domain"]  # the LoRA changed the images
    assert res["vs_lora"] == res["lora"]  # the same LoRA on the same prompts and seeds
    v = res["vs_base"]["lora"]
    assert v["fd_reduction"] == pytest.approx(1 - res["lora"]["fd_domain"]
                                              / res["base"]["fd_domain"])

    # the ceiling is the judge on the held-out images the prompts were taken from
    prompts = json.loads((out / "prompts.json").read_text())
    recs = {rec.id: rec for rec in ws.catalog.images(split="test")}
    _, true, _ = load_images(ws, [recs[p["image"]] for p in prompts])
    preds = Judge(judge).predict(true)
    exact = np.mean([pr == p["attributes"] for pr, p in zip(preds, prompts, strict=True)])
    assert res["judge_ceiling"]["combo_agreement"] == pytest.approx(exact)
    assert [p["seed"] for p in prompts] == sorted({p["seed"] for p in prompts}, key=[
        p["seed"] for p in prompts].index)  # one seed per prompt, shared by both rows

    page = (out / "compare.html").read_text()
    assert page.count("data:image/png;base64,") == 13  # 4 prompts × 3 rows + the chart
    assert prompts[0]["prompt"] in page

    again = CliRunner().invoke(app, args)  # a rerun reuses the images and measures the same
    assert again.exit_code == 0, again.output
    assert json.loads((out / "compare.json").read_text())["lora"] == res["lora"]
    other = CliRunner().invoke(app, [*args[:-3], "--cfg", "3", *args[-3:]])
    assert other.exit_code == 2 and "other settings" in other.output  # stale images not reused


def test_compare_names_a_missing_lora(tmp_path, parts):
    ws, model, _, judge = parts
    r = CliRunner().invoke(app, ["compare", str(ws.root), "--model", str(model), "--lora",
                                 str(tmp_path / "nope.safetensors"), "--judge", str(judge)])
    assert r.exit_code == 2 and "nope.safetensors: no such file" in r.output
    # a model of no known family needs every sampling setting from the flags
    r = CliRunner().invoke(app, ["compare", str(ws.root), "--model", str(model), "--steps", "2"])
    assert r.exit_code == 2 and "matches no preset family" in r.output


def test_without_a_test_split_prompts_come_from_train_and_there_is_no_ceiling(tmp_path, parts):
    _, model, _, judge = parts
    ws = build(tmp_path / "no-test", n_train=2, n_eval=0)  # 12 train images, no val/test
    s = CompareSettings(model=str(model), loras={}, prompts=3, steps=2, size=16)
    res = compare(ws.root, tmp_path / "c", s, judge, progress=False)
    ws.close()
    assert res["reference"]["set"] == "real train split" and res["reference"]["n"] == 12
    assert "judge_ceiling" not in res and "decoder_ceiling" not in res
    assert res["base"]["n"] == 3 and res["vs_base"] == {}


def test_a_classifier_trained_by_the_cli_is_a_judge(tmp_path, parts):
    ws, model, lora, _ = parts
    cfg = tmp_path / "clf.toml"
    cfg.write_text('backbone = "mobilenet_v3_small"\npretrained = "none"\nimage_size = 16\n'
                   "epochs = 1\nbatch_size = 8\n")
    ckpt = tmp_path / "mine.safetensors"
    r = CliRunner().invoke(app, ["classify", "train", str(ws.root), str(ckpt), "--config",
                                 str(cfg), "--json"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "cmp"
    r = CliRunner().invoke(app, [
        "compare", str(ws.root), "--model", str(model), "--lora", str(lora), "--prompts", "3",
        "--judge", str(ckpt), "--pair", "type,glaze", "--steps", "2", "--size", "16",
        "--sampler", "DDIM", "--cfg", "1.75", "--clip-skip", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "compare.json").read_text())
    assert res["judge"]["checkpoint"] == str(ckpt) and res["pair"] == ["type", "glaze"]
    for row in ("base", "lora", "judge_ceiling"):
        assert res[row]["pair_agreement"] == res[row]["glaze_type_agreement"]
        assert 0.0 <= res[row]["combo_agreement"] <= res[row]["pair_agreement"] <= 1.0
    bad = CliRunner().invoke(app, [
        "compare", str(ws.root), "--model", str(model), "--prompts", "3", "--judge", str(ckpt),
        "--pair", "glaze,size", "--steps", "2", "--size", "16", "--sampler", "DDIM", "--cfg",
        "1.75", "--clip-skip", "1", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "--pair glaze,size: the judge reads" in bad.output
    assert not (tmp_path / "bad" / "base").exists()  # refused before generating


def test_without_a_judge_fd_is_in_a_named_generic_space(tmp_path, parts):
    ws, model, lora, _ = parts
    out = tmp_path / "cmp"
    r = CliRunner().invoke(app, [
        "compare", str(ws.root), "--model", str(model), "--lora", str(lora), "--prompts", "3",
        "--features", "pixels", "--steps", "2", "--size", "16", "--sampler", "DDIM", "--cfg",
        "1.75", "--clip-skip", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "agreement needs a judge" in r.output
    res = json.loads((out / "compare.json").read_text())
    assert res["judge"] is None and res["feature_space"].startswith("pixels16")
    assert res["base"]["combo_agreement"] is None and "judge_ceiling" not in res
    assert res["base"]["fd"] > 0 and res["base"]["fd"] != res["lora"]["fd"]
    assert "agreement needs a judge" in (out / "compare.html").read_text()


def test_a_lora_row_cannot_take_the_base_rows_name():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="cannot be named 'base'"):
        CompareSettings(model="mini", loras={"base": "a.safetensors"})
