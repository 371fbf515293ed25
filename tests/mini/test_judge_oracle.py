import csv

from craftlora.mini.judge import judge_config, train_judge
from craftlora.mini.kiln import ATTRIBUTES, valid_combinations
from craftlora.mini.oracle import WRONG_TASKS, allocate, relabel, shifted
from craftlora.models.classifier import load_classifier, predict


def test_judge_trains_saves_and_reports(tmp_path):
    cfg = judge_config().model_copy(update={"epochs": 1, "batch_size": 32})
    out = tmp_path / "judge.safetensors"
    combos = valid_combinations()[::20]  # a spread of combinations keeps the test short
    rep = train_judge(out, n_per_combo=2, n_val_per_combo=1, n_test_per_combo=1, size=32,
                      config=cfg, combos=combos, progress=False)
    n = len(combos)
    assert rep["train_images"] == 2 * n and rep["heldout_images"] == n
    h = rep["heldout"]
    assert set(h["task_accuracy"]) == set(ATTRIBUTES)
    assert 0.0 <= h["combo_accuracy"] <= min(h["task_accuracy"].values())
    model, meta = load_classifier(out)
    assert meta["role"] == "judge" and meta["image_size"] == 32
    assert meta["tasks"] == ATTRIBUTES and meta["heldout"] == h
    import numpy as np

    labels = predict(model, np.zeros((2, 32, 32, 3), dtype=np.uint8))
    assert labels[0]["glaze"] in ATTRIBUTES["glaze"]


def test_a_judge_trained_through_the_decoder_reports_both_readings(tmp_path):
    from craftlora.models.loader import load_components

    cfg = judge_config().model_copy(update={"epochs": 1, "batch_size": 32})
    combos = valid_combinations()[::40]
    rep = train_judge(tmp_path / "j.safetensors", n_per_combo=2, n_val_per_combo=1,
                      n_test_per_combo=1, size=32, config=cfg, combos=combos, progress=False,
                      decoder=load_components("mini").vae)
    assert "VAE" in rep["decoder"]
    d = rep["heldout_decoded"]
    assert set(d["task_accuracy"]) == set(ATTRIBUTES)
    assert 0.0 <= d["combo_accuracy"] <= min(d["task_accuracy"].values())


def test_allocate_and_wrong_labels(tmp_path):
    assert allocate([1, 1, 2], 8) == [2, 2, 4]
    assert sum(allocate([0.3, 0.3, 0.4], 7)) == 7
    m = shifted(["a", "b", "c"])
    assert m == {"a": "b", "b": "c", "c": "a"} and all(k != v for k, v in m.items())
    f = tmp_path / "labels.csv"
    f.write_text("file,glaze,type\nx.png,white,bowl\n")
    relabel(f, {"glaze": shifted(ATTRIBUTES["glaze"])})
    row = next(csv.DictReader(f.open()))
    assert row["glaze"] == ATTRIBUTES["glaze"][1] and row["type"] == "bowl"
    # the negative control is wrong on every task, so no task gets extra right labels from it
    assert set(WRONG_TASKS) == set(ATTRIBUTES)
    f.write_text("file,dynasty,kiln,glaze,type\nx.png,Yuan,Yaozhou,qingbai,jar\n")
    relabel(f, {t: shifted(ATTRIBUTES[t]) for t in WRONG_TASKS})
    row = next(csv.DictReader(f.open()))
    assert {k: row[k] for k in ATTRIBUTES} == {
        "dynasty": "Song", "kiln": "Ding", "glaze": "white", "type": "bowl"}
