"""`craftlora demo` end to end on tiny settings: every step runs, demo.json has the contract,
a rerun resumes (skips every finished step), and synthetic images never reach val/test."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from craftlora.cli.main import app

# about 90 s of CPU: a tiny model, 300 renders, 2 LoRA steps, 4 one-epoch classifier runs
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    from craftlora.models.tiny import TinySpec, save_tiny_pipeline

    root = tmp_path_factory.mktemp("demo")
    model = save_tiny_pipeline(TinySpec(image_size=32), root / "model" / "pipe")
    out = root / "out"
    args = ["demo", "--out", str(out), "--preset", "tiny", "--model", str(model)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    return out, args, first.output


def test_demo_json_has_the_contract(tiny_demo):
    out, _, output = tiny_demo
    d = json.loads((out / "demo.json").read_text())
    for model in ("base", "lora"):
        row = d["table6"][model]
        assert row["fd_domain"] >= 0.0
        assert 0.0 <= row["glaze_type_agreement"] <= 1.0
        assert 0.0 <= row["combo_agreement"] <= row["glaze_type_agreement"]
        assert row["n"] == 8
    assert 0.0 <= d["table6"]["judge_ceiling"]["combo_agreement"] <= 1.0
    assert 0.0 <= d["table6"]["decoder_ceiling"]["combo_agreement"] <= 1.0
    cn = d["controlnet"]
    assert (cn["contour_f1"] is None and cn["reason"]) or 0.0 <= cn["contour_f1"] <= 1.0
    exp = d["experiment"]
    assert set(exp["configs"]) == {"real-only", "real+syn-5", "real+syn-10", "real+oracle-10"}
    for c in exp["configs"].values():
        for task in ("dynasty", "kiln", "glaze", "type"):
            assert len(c["tasks"][task]["f1_macro"]["seeds"]) == 1
    assert set(d["wall_s_per_step"]) == {"world", "lora", "judge", "table6", "plan", "generate",
                                         "oracle", "qc", "controlnet", "experiment"}
    assert d["wall_s"] == pytest.approx(sum(d["wall_s_per_step"].values()))
    assert "not the full experiment" in d["note"].lower()
    assert "not the full experiment" in " ".join(output.split()).lower()
    report = (out / "report.html").read_text()
    assert "Table 6" in report and "base + LoRA" in report and "Quick look" in report
    assert d["lora"]["lora_sha256"][:16] in report  # samples are labelled with their LoRA


def test_table6_uses_the_same_prompts_and_seeds_for_both_models(tiny_demo):
    out, _, _ = tiny_demo
    prompts = json.loads((out / "table6" / "prompts.json").read_text())
    assert len({p["seed"] for p in prompts}) == len(prompts)
    for p in prompts:
        assert (out / "table6" / "base" / f"{p['i']:05d}.png").is_file()
        assert (out / "table6" / "lora" / f"{p['i']:05d}.png").is_file()


def test_synthetic_sets_stay_out_of_val_and_test(tiny_demo):
    from craftlora.catalog.workspace import Workspace

    out, _, _ = tiny_demo
    d = json.loads((out / "demo.json").read_text())
    with Workspace.open(out / "workspace") as ws:
        syn = ws.catalog.images(origin="synthetic")
        sets = {r.set_name for r in syn}
        assert {"minimal", "comprehensive", "oracle"} <= sets
        assert all(r.split in (None, "train") for r in syn)
        for name in ("minimal", "comprehensive"):
            made = ws.catalog.images(set_name=name)
            assert len(made) == d["plan"]["sets"][name]["images"]
            assert all(r.provenance["loras"][0]["sha256"] == d["lora"]["lora_sha256"]
                       for r in made)


def test_rerun_resumes_every_step_and_keeps_the_figures(tiny_demo):
    out, args, _ = tiny_demo
    before = json.loads((out / "demo.json").read_text())
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    after = json.loads((out / "demo.json").read_text())
    assert sorted(after["resumed_steps"]) == sorted(before["wall_s_per_step"])
    assert after["table6"] == before["table6"]
    assert after["experiment"]["configs"] == before["experiment"]["configs"]


def test_other_settings_in_the_same_folder_are_refused(tiny_demo):
    out, args, _ = tiny_demo
    r = CliRunner().invoke(app, [*args[:-2], "--model", "mini", "--preset", "quick"])
    assert r.exit_code != 0
    assert "other settings" in " ".join(r.output.split())
