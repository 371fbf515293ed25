import json

import numpy as np
import pytest
from glaze_type_world import add

from craftlora.experiment.config import ExperimentConfig, ExperimentConfigError, load_experiment
from craftlora.experiment.runner import run_experiment


def config(ws_root) -> ExperimentConfig:
    return ExperimentConfig.model_validate({
        "workspace": str(ws_root),
        "seeds": [0, 1],
        "bootstrap": 100,
        "train": {"backbone": "mobilenet_v3_small", "pretrained": "none", "image_size": 16,
                  "epochs": 1, "batch_size": 16, "augment": {"enabled": False}},
        "configs": [{"name": "real-only"},
                    {"name": "real+oracle", "synthetic": "oracle", "ratio": 0.1}],
    })


def test_experiment_results_and_resume(glaze_type_ws, tmp_path):
    ws = glaze_type_ws
    rng = np.random.default_rng(1)
    syn = {add(ws, "black", "vase", rng, split=None, origin="synthetic", set_name="oracle")
           for _ in range(6)}
    out = tmp_path / "out"
    cfg = config(ws.root)
    res = run_experiment(cfg, tmp_path, out, progress=False)
    assert res["runs_trained_now"] == 4
    f1 = res["configs"]["real-only"]["tasks"]["glaze"]["f1_macro"]
    assert set(f1) == {"mean", "std", "seeds"} and len(f1["seeds"]) == 2
    assert 0.0 <= f1["mean"] <= 1.0
    for key in ("accuracy", "top5"):
        assert key in res["configs"]["real+oracle"]["tasks"]["type"]
    d = res["deltas"]["real+oracle"]["tasks"]["glaze"]["f1_macro"]
    assert d["ci_low"] <= d["delta"] <= d["ci_high"]
    assert res["configs"]["real+oracle"]["mix"]["n_synthetic"] == 4  # 36 real → 4 = 10 %
    assert (out / "report.html").is_file() and (out / "plots" / "learning_curves.png").is_file()
    assert "mobilenet_v3_small (random-init)" in (out / "report.html").read_text()
    # synthetic images were trained on, never tested on
    run = json.loads((out / "runs" / "real+oracle" / "seed-0" / "result.json").read_text())
    assert run["test"]["glaze"]["n"] == 12
    test_ids = {r.id for r in ws.catalog.images(split="test")}
    assert not test_ids & syn

    stamp = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("result.json")}
    assert len(stamp) == 4
    again = run_experiment(cfg, tmp_path, out, progress=False)
    assert again["runs_trained_now"] == 0
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp
    assert again["configs"]["real-only"]["tasks"]["glaze"]["f1_macro"] == f1


def test_config_errors(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text('workspace = "w"\nunknown = 1\n[[configs]]\nname = "real"\n')
    with pytest.raises(ExperimentConfigError, match="unknown"):
        load_experiment(bad)
    bad.write_text('workspace = "w"\n[[configs]]\nname = "mix"\nsynthetic = "s"\n')
    with pytest.raises(ExperimentConfigError, match="ratio or count"):
        load_experiment(bad)
    with pytest.raises(ExperimentConfigError, match="not found"):
        load_experiment(tmp_path / "missing.toml")


def test_parallel_workers_train_every_pending_run(glaze_type_ws, tmp_path):
    ws = glaze_type_ws
    rng = np.random.default_rng(2)
    for _ in range(6):
        add(ws, "white", "bowl", rng, split=None, origin="synthetic", set_name="oracle")
    out = tmp_path / "par"
    cfg = config(ws.root).model_copy(update={"workers": 2})
    first = out / "runs" / "real-only" / "seed-0" / "result.json"
    serial = run_experiment(cfg.model_copy(update={"seeds": [0]}), tmp_path, out,
                            progress=False)
    assert serial["runs_trained_now"] == 2 and first.is_file()
    stamp = first.stat().st_mtime_ns
    res = run_experiment(cfg, tmp_path, out, progress=False)  # seed 1 of both, in 2 processes
    assert res["runs_trained_now"] == 2 and first.stat().st_mtime_ns == stamp
    for name in ("real-only", "real+oracle"):
        run = json.loads((out / "runs" / name / "seed-1" / "result.json").read_text())
        assert run["seed"] == 1 and run["config"] == name and run["test"]["glaze"]["n"] == 12
    assert res["configs"]["real+oracle"]["tasks"]["type"]["f1_macro"]["seeds"][0] == \
        serial["configs"]["real+oracle"]["tasks"]["type"]["f1_macro"]["seeds"][0]


def test_shipped_oracle_experiment_trains_like_the_demo():
    """examples/mini-oracle.toml and the demo's experiment use one classifier recipe."""
    from pathlib import Path

    from craftlora.demo.settings import preset

    cfg = load_experiment(Path(__file__).resolve().parents[2] / "examples" / "mini-oracle.toml")
    names = [c.name for c in cfg.configs]
    assert any("real" in n and "oracle" not in n and "wrong" not in n for n in names)
    assert any("oracle" in n for n in names) and any("wrong" in n for n in names)
    assert cfg.seeds == [0, 1, 2]
    demo = preset("full").classifier
    skip = {"epochs", "patience"}  # the demo trains shorter to fit its 30 minutes
    assert cfg.train.model_dump(exclude=skip) == demo.model_dump(exclude=skip)
    assert cfg.train.task_weights["type"] == 2.0 and cfg.train.augment.crop_ratio == (1.0, 1.0)
