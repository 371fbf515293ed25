"""The seven-tier planner on hand-made catalogs with known combination counts."""

from __future__ import annotations

import hashlib
import json

import pytest

from craftlora.catalog.workspace import Workspace
from craftlora.config import Attribute, WorkspaceConfig
from craftlora.generate.plan_model import PlanError, load_plan, save_plan
from craftlora.generate.planner import TierConfig, apportion, make_plan

GLAZES = ["white", "ivory", "celadon", "brown"]
TYPES = ["bowl", "cup", "vase", "dish"]

# (glaze, type) -> count: one per tier band, and a common bulk
COUNTS = {
    ("white", "cup"): 1,  # extreme rare
    ("brown", "dish"): 1,  # extreme rare
    ("ivory", "bowl"): 3,  # very rare
    ("celadon", "cup"): 4,  # very rare (upper bound)
    ("celadon", "vase"): 5,  # moderate (lower bound)
    ("ivory", "dish"): 10,  # moderate (upper bound)
    ("white", "bowl"): 40,
    ("white", "dish"): 30,
    ("ivory", "vase"): 20,
    ("celadon", "bowl"): 60,
}


def _ws(tmp_path, counts=COUNTS, with_dynasty=False):
    attrs = {"glaze": Attribute(values=GLAZES), "type": Attribute(values=TYPES)}
    if with_dynasty:
        attrs["dynasty"] = Attribute(values=["Song", "Yuan"])
    ws = Workspace.create(tmp_path / "ws", WorkspaceConfig(name="t", attributes=attrs))
    k = 0
    for (g, t), n in counts.items():
        for j in range(n):
            k += 1
            a = {"glaze": g, "type": t}
            if with_dynasty:
                a["dynasty"] = "Song" if j % 3 else "Yuan"
            ws.catalog.add_image(
                sha256=hashlib.sha256(str(k).encode()).hexdigest(),
                path=f"img/{k}.png",
                width=8,
                height=8,
                attributes=a,
            )
    return ws


def _by_tier(plan_set):
    out = {}
    for e in plan_set.entries:
        out.setdefault(e.tier, {})[(e.attributes["glaze"], e.attributes["type"])] = e.count
    return out


def test_rare_tiers_and_targets(tmp_path):
    ws = _ws(tmp_path)
    cfg = TierConfig(type_min=0, glaze_min=0)
    plan = make_plan(ws, by=["glaze", "type"], tiers=cfg)
    tiers = _by_tier(plan.sets[0])
    assert tiers["extreme_rare"] == {("white", "cup"): 30, ("brown", "dish"): 30}
    assert tiers["very_rare"] == {("ivory", "bowl"): 25, ("celadon", "cup"): 25}
    assert tiers["moderate_rare"] == {("celadon", "vase"): 25, ("ivory", "dish"): 25}
    assert "confusion" not in tiers and "general" not in tiers
    assert "type_balance" not in tiers and "glaze_balance" not in tiers
    assert plan.sets[0].total == 2 * 30 + 4 * 25


def test_targets_and_bounds_are_configurable(tmp_path):
    ws = _ws(tmp_path)
    cfg = TierConfig(
        extreme_rare=7, very_rare=5, moderate_rare=2, very_rare_max=5, type_min=0, glaze_min=0
    )
    tiers = _by_tier(make_plan(ws, by=["glaze", "type"], tiers=cfg).sets[0])
    assert tiers["extreme_rare"] == {("white", "cup"): 7, ("brown", "dish"): 7}
    # celadon+vase (n=5) moves up to very rare when its bound is 5
    assert tiers["very_rare"] == {
        ("ivory", "bowl"): 5,
        ("celadon", "cup"): 5,
        ("celadon", "vase"): 5,
    }
    assert tiers["moderate_rare"] == {("ivory", "dish"): 2}


def test_confusion_pairs_from_matrix(tmp_path):
    ws = _ws(tmp_path)
    cm = tmp_path / "cm.json"
    # white <-> ivory confused most; celadon/brown a little; rows = true
    cm.write_text(
        json.dumps(
            {
                "glaze": {
                    "labels": GLAZES,
                    "matrix": [[50, 30, 0, 0], [20, 40, 0, 0], [0, 0, 90, 1], [0, 0, 0, 9]],
                }
            }
        )
    )
    cfg = TierConfig(type_min=0, glaze_min=0, confusion_pairs=1, confusion_contexts=3)
    plan = make_plan(ws, by=["glaze", "type"], tiers=cfg, confusion=cm)
    tiers = _by_tier(plan.sets[0])
    # shared contexts of white/ivory: bowl, dish (cup only white, vase only ivory). Combos
    # already in a higher tier keep it: ivory+bowl stays very rare.
    assert tiers["confusion"] == {
        ("white", "bowl"): 25,
        ("white", "dish"): 25,
        ("ivory", "dish"): 25,
    }
    assert ("ivory", "bowl") in tiers["very_rare"]
    assert ("ivory", "dish") not in tiers.get("moderate_rare", {})  # taken by confusion first
    assert tiers["confusion"].keys().isdisjoint(tiers["very_rare"].keys())


def test_confusion_from_csv_and_results_json(tmp_path):
    ws = _ws(tmp_path)
    csv_path = tmp_path / "confusion_type.csv"
    rows = [",bowl,cup,vase,dish", "bowl,10,0,0,5", "cup,0,5,0,0", "vase,0,0,5,0", "dish,6,0,0,4"]
    csv_path.write_text("\n".join(rows) + "\n")
    cfg = TierConfig(type_min=0, glaze_min=0, confusion_pairs=1, confusion_contexts=1)
    tiers = _by_tier(make_plan(ws, by=["glaze", "type"], tiers=cfg, confusion=csv_path).sets[0])
    # bowl/dish shared glazes: white (40/30), ivory (3/10); rarest context first = ivory,
    # but ivory+bowl is very rare and ivory+dish moderate... confusion takes ivory+dish.
    assert tiers["confusion"] == {("ivory", "dish"): 25}
    results = tmp_path / "results.json"
    results.write_text(
        json.dumps(
            {
                "configs": {
                    "real-only": {
                        "tasks": {
                            "type": {
                                "confusion": {
                                    "labels": TYPES,
                                    "matrix": [
                                        [10, 0, 0, 5],
                                        [0, 5, 0, 0],
                                        [0, 0, 5, 0],
                                        [6, 0, 0, 4],
                                    ],
                                }
                            }
                        }
                    }
                }
            }
        )
    )
    tiers2 = _by_tier(make_plan(ws, by=["glaze", "type"], tiers=cfg, confusion=results).sets[0])
    assert tiers2["confusion"] == tiers["confusion"]


def test_balance_and_general_fill(tmp_path):
    ws = _ws(tmp_path)
    cfg = TierConfig(type_min=100, glaze_min=0)
    plan = make_plan(ws, by=["glaze", "type"], tiers=cfg, total=600)
    tiers = _by_tier(plan.sets[0])
    # type cup: real 1 + 4 = 5, planned 30 + 25 = 55 -> 60 -> deficit 40, split over its two
    # valid combos (both already planned, so both get 20)
    assert tiers["type_balance"][("white", "cup")] + tiers["type_balance"][("celadon", "cup")] == 40
    # vase: real 25 + planned 25 -> 50 short; its combos: celadon+vase planned, ivory+vase fresh
    assert tiers["type_balance"][("ivory", "vase")] == 50
    # bowl: 103 real -> no balance
    assert not any(t == "bowl" for _, t in tiers["type_balance"])
    assert plan.sets[0].total == 600
    assert set(tiers["general"]) <= {("celadon", "bowl"), ("white", "bowl"), ("white", "dish")}


def test_total_smaller_than_tiers_trims_lowest_priority(tmp_path):
    ws = _ws(tmp_path)
    cfg = TierConfig(type_min=0, glaze_min=0)
    plan = make_plan(ws, by=["glaze", "type"], tiers=cfg, total=100)
    tiers = _by_tier(plan.sets[0])
    assert plan.sets[0].total == 100
    assert sum(tiers["extreme_rare"].values()) == 60  # untouched
    assert sum(tiers["very_rare"].values()) == 40
    assert "moderate_rare" not in tiers
    assert any("trimmed" in n for n in plan.notes)


def test_only_valid_combinations_and_full_expansion(tmp_path):
    ws = _ws(tmp_path, with_dynasty=True)
    cfg = TierConfig(type_min=0, glaze_min=0)
    plan = make_plan(ws, by=["glaze", "type"], tiers=cfg)
    seen = {(e.attributes["glaze"], e.attributes["type"]) for e in plan.sets[0].entries}
    assert seen <= set(COUNTS)
    for e in plan.sets[0].entries:
        assert set(e.attributes) == {"glaze", "type", "dynasty"}
    # ivory+bowl (n=3): j=0 Yuan, j=1,2 Song -> 25 split 2:1 by observed frequency
    ib = {
        e.attributes["dynasty"]: e.count
        for e in plan.sets[0].entries
        if (e.attributes["glaze"], e.attributes["type"]) == ("ivory", "bowl")
    }
    assert ib == {"Song": 17, "Yuan": 8}


def test_valid_list_adds_unobserved_when_asked(tmp_path):
    ws = _ws(tmp_path)
    valid = [{"glaze": "brown", "type": "vase"}]
    off = make_plan(ws, tiers=TierConfig(type_min=0, glaze_min=0), valid=valid)
    assert ("brown", "vase") not in _by_tier(off.sets[0])["extreme_rare"]
    on = make_plan(
        ws, tiers=TierConfig(type_min=0, glaze_min=0, include_unobserved=True), valid=valid
    )
    assert _by_tier(on.sets[0])["extreme_rare"][("brown", "vase")] == 30
    with pytest.raises(PlanError, match="not allowed"):
        make_plan(ws, valid=[{"glaze": "green", "type": "vase"}])


def test_dual_strategy_sets(tmp_path):
    ws = _ws(tmp_path)
    cm = tmp_path / "cm.json"
    cm.write_text(
        json.dumps(
            {
                "task": "glaze",
                "labels": GLAZES,
                "matrix": [[50, 30, 0, 0], [20, 40, 0, 0], [0, 0, 9, 0], [0, 0, 0, 9]],
            }
        )
    )
    plan = make_plan(ws, strategy="dual", by=["glaze", "type"], total=500, confusion=cm)
    minimal, comp = plan.get_set("minimal"), plan.get_set("comprehensive")
    assert comp.total == 500
    assert minimal.total == round(500 * 570 / 2500)
    assert {e.tier for e in minimal.entries} == {"extreme_rare", "confusion"}
    assert {"extreme_rare", "very_rare", "moderate_rare"} <= {e.tier for e in comp.entries}


def test_plan_round_trips_as_editable_toml(tmp_path):
    ws = _ws(tmp_path)
    plan = make_plan(ws, by=["glaze", "type"], tiers=TierConfig(type_min=0, glaze_min=0))
    path = tmp_path / "plan.toml"
    save_plan(plan, path)
    text = path.read_text()
    assert text.startswith("# craftlora generation plan")
    assert 'model = "mini"' in text and 'sampler = "DDIM"' in text and "cfg = 1.75" in text
    assert "clip_skip = 1" in text
    back = load_plan(path)
    assert back == plan
    path.write_text(text.replace("count = 30", "count = 3", 1))
    assert load_plan(path).sets[0].total == plan.sets[0].total - 27
    path.write_text(text.replace("steps = 20", "stepz = 20"))
    with pytest.raises(PlanError, match="stepz"):
        load_plan(path)


def test_apportion_exact():
    assert apportion([1, 1, 1], 10) == [4, 3, 3]
    assert sum(apportion([5, 3, 0.5], 17)) == 17
    assert apportion([0, 0], 5) == [0, 0]


def test_confusion_from_run_result_prefers_val_and_notes_test(tmp_path):
    from craftlora.generate.planner import read_confusion

    cm_val = [[5, 5, 0, 0], [5, 5, 0, 0], [0, 0, 9, 0], [0, 0, 0, 9]]
    cm_test = [[9, 0, 0, 0], [0, 9, 0, 0], [0, 0, 5, 5], [0, 0, 5, 5]]
    run = tmp_path / "result.json"
    run.write_text(
        json.dumps(
            {
                "test": {"glaze": {"labels": GLAZES, "confusion": cm_test, "f1_macro": 0.5}},
                "val": {"glaze": {"labels": GLAZES, "confusion": cm_val}},
            }
        )
    )
    notes: list[str] = []
    labels, m = read_confusion(run, notes=notes)["glaze"]
    assert labels == GLAZES and m.tolist() == cm_val and notes == []
    run.write_text(json.dumps({"test": {"glaze": {"labels": GLAZES, "confusion": cm_test}}}))
    assert read_confusion(run, notes=notes)["glaze"][1].tolist() == cm_test
    assert len(notes) == 1 and "test-set predictions" in notes[0]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"labels": ["a", "b"], "matrix": [[1, 2]]}))
    with pytest.raises(PlanError, match="square"):
        read_confusion(bad)


def _sd_folder(tmp_path, name, unet_config, index=None):
    """A diffusers folder's configs only: the family is read from them, no weights needed."""
    folder = tmp_path / name
    (folder / "unet").mkdir(parents=True)
    index = index or {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet"]}
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / "unet" / "config.json").write_text(json.dumps(unet_config))
    return folder


def test_generation_settings_come_from_the_model_preset(tmp_path):
    ws = _ws(tmp_path)
    tiers = TierConfig(type_min=0, glaze_min=0)
    mini = make_plan(ws, by=["glaze", "type"], tiers=tiers).generation
    assert (mini.model, mini.sampler, mini.steps, mini.cfg, mini.clip_skip) == (
        "mini", "DDIM", 20, 1.75, 1)
    sd15 = _sd_folder(tmp_path, "sd15", {"cross_attention_dim": 768})
    plan = make_plan(ws, by=["glaze", "type"], tiers=tiers, model=str(sd15))
    g = plan.generation
    assert (g.model, g.sampler, g.cfg, g.clip_skip) == (str(sd15), "DPM++ 2M Karras", 7.0, 2)
    assert any("SD 1.5" in n and "porcelain study" in n for n in plan.notes)
    xl = _sd_folder(tmp_path, "xl", {"cross_attention_dim": 2048,
                                     "addition_embed_type": "text_time"})
    assert make_plan(ws, by=["glaze", "type"], tiers=tiers, model=str(xl)).generation.cfg == 7.0
    # the planner config's [generation] wins over the preset, field by field
    g = make_plan(ws, by=["glaze", "type"], tiers=tiers, model=str(sd15),
                  generation={"sampler": "euler a", "cfg": 5}).generation
    assert (g.sampler, g.cfg, g.clip_skip) == ("Euler a", 5.0, 2)
    odd = _sd_folder(tmp_path, "odd", {"cross_attention_dim": 32})
    with pytest.raises(PlanError, match="cross_attention_dim 32.*sampler, steps, cfg, clip_skip"):
        make_plan(ws, by=["glaze", "type"], tiers=tiers, model=str(odd))
    full = {"sampler": "Euler", "steps": 3, "cfg": 2.0, "clip_skip": 1}
    assert make_plan(ws, by=["glaze", "type"], tiers=tiers, model=str(odd),
                     generation=full).generation.steps == 3
    with pytest.raises(PlanError, match="cfg"):
        make_plan(ws, by=["glaze", "type"], tiers=tiers, generation={"cfg": -1})


def test_plan_file_without_settings_reads_its_model_preset(tmp_path):
    ws = _ws(tmp_path)
    path = tmp_path / "plan.toml"
    save_plan(make_plan(ws, by=["glaze", "type"], tiers=TierConfig(type_min=0, glaze_min=0)), path)
    text = path.read_text()
    for line in ("steps = 20\n", "cfg = 1.75\n", 'sampler = "DDIM"\n', "clip_skip = 1\n"):
        assert line in text
        text = text.replace(line, "", 1)
    path.write_text(text)
    g = load_plan(path).generation
    assert (g.sampler, g.steps, g.cfg, g.clip_skip) == ("DDIM", 20, 1.75, 1)
    sd2 = _sd_folder(tmp_path, "sd2", {"cross_attention_dim": 1024})
    path.write_text(text.replace('model = "mini"', f"model = {json.dumps(str(sd2))}"))
    g = load_plan(path).generation
    assert (g.sampler, g.cfg, g.clip_skip) == ("DPM++ 2M Karras", 7.0, 1)
    path.write_text(text.replace('model = "mini"', 'model = "org/some-model"'))
    with pytest.raises(PlanError, match="org/some-model: cannot tell the model family.*set "
                                        "steps, cfg, sampler, clip_skip in \\[generation\\]"):
        load_plan(path)


def test_confusion_from_an_experiments_own_results_json(tmp_path):
    """The layout ``experiment run`` writes: results.json without matrices, and per-run
    result.json files whose ``test`` part comes from classify's evaluate_scores."""
    import numpy as np

    from craftlora.classify.evaluate import evaluate_scores

    ws = _ws(tmp_path)
    out = tmp_path / "exp"
    labels = np.array([0, 0, 0, 3, 3, 3, 1, 2])  # bowl, bowl, bowl, dish x3, cup, vase
    for seed, preds in ((0, [0, 3, 3, 0, 3, 3, 1, 2]), (1, [0, 0, 3, 0, 0, 3, 1, 2])):
        scores = np.eye(4)[preds]
        test = evaluate_scores({"type": labels}, {"type": scores}, {"type": TYPES})
        run = out / "runs" / "real-only" / f"seed-{seed}" / "result.json"
        run.parent.mkdir(parents=True)
        run.write_text(json.dumps({"config": "real-only", "seed": seed, "test": test}))
    results = out / "results.json"
    results.write_text(json.dumps({
        "tasks": {"type": TYPES}, "seeds": [0, 1], "baseline": "real-only",
        "configs": {"real-only": {"confusion_pairs": {}}}, "deltas": {},
    }))
    from craftlora.generate.planner import read_confusion

    notes: list[str] = []
    got_labels, m = read_confusion(results, notes=notes)["type"]
    assert got_labels == TYPES
    assert m[0].tolist() == [3, 0, 0, 3] and m[3].tolist() == [3, 0, 0, 3]
    assert "2 seeds" in notes[0] and "test set" in notes[0]
    cfg = TierConfig(type_min=0, glaze_min=0, confusion_pairs=1, confusion_contexts=1)
    tiers = _by_tier(make_plan(ws, by=["glaze", "type"], tiers=cfg, confusion=results).sets[0])
    assert tiers["confusion"] == {("ivory", "dish"): 25}
    for run in out.glob("runs/*/*/result.json"):
        run.unlink()
    with pytest.raises(PlanError, match="runs/real-only/seed-"):
        read_confusion(results)
