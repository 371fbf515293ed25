"""The workflow's stages on the mini character: prompt plan, QC + identity selection, tags,
kohya export, and the export read back by `craftlora ingest`."""

from __future__ import annotations

import json
from pathlib import Path

from craftlora.catalog.ingest import ingest
from craftlora.catalog.workspace import Workspace
from craftlora.character.export import export_kohya
from craftlora.character.prompts import AXES, prompt_plan, write_prompts
from craftlora.character.select import review_identity, select_kept
from craftlora.character.spec import init_character, load_character, workspace_config
from craftlora.character.tags import tag_set
from craftlora.generate.plan_model import load_plan
from craftlora.mini.canvas import png_bytes, write_file
from craftlora.mini.character import world


def _plan(tmp_path: Path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(world.SPEC))
    init_character(tmp_path / "ws", spec_path, "pip")
    spec, trigger = load_character(tmp_path / "ws")
    plan = prompt_plan(spec, trigger, candidates=16, eval_prompts=3, per_prompt=2, lora="pip")
    return write_prompts(tmp_path / "ws" / "character" / "prompts.toml", plan)


def test_prompt_plan_reads_back_and_holds_out_eval_combinations(tmp_path):
    plan = load_plan(_plan(tmp_path))
    cand, base, lora = (plan.get_set(n) for n in ("candidates", "eval-base", "eval-lora"))
    assert len(cand.entries) == 16 and cand.total == 16 and lora.total == 6
    seen = {tuple(e.attributes.values()) for e in cand.entries}
    assert not seen & {tuple(e.attributes.values()) for e in lora.entries}
    for e in cand.entries:
        assert e.prompt.startswith("pip, round head") and set(e.attributes) == set(AXES)
        assert all(v in e.prompt for v in e.attributes.values())
    assert all(e.prompt.startswith("pip, ") and e.prompt.endswith("<lora:pip:1>")
               for e in lora.entries)
    assert all("pip" not in e.prompt.split(", ")[0] for e in base.entries)
    assert "watermark" in plan.prompt.negative


def test_selection_tags_export_and_ingest_round_trip(tmp_path):
    plan = load_plan(_plan(tmp_path))
    entries = [(e.id, e.attributes) for e in plan.get_set("candidates").entries]
    faults = world.render_candidates(tmp_path / "renders", entries, seed=0,
                                     watermark_rate=0.2, distortion_rate=0.2,
                                     off_model_rate=0.2)
    ref = tmp_path / "ref"
    ref.mkdir()
    for i, (_, a) in enumerate(entries):
        write_file(ref / f"r{i}.png", png_bytes(world.true_renders(a, 1, 700 + i)[0]))
    from craftlora.qc.runner import run_qc

    with Workspace.open(tmp_path / "ws") as ws:
        ingest(ws, ref, origin="real", set_name="reference", progress=False)
        ingest(ws, tmp_path / "renders", origin="synthetic", set_name="cand", progress=False)
        run_qc(ws, "cand")
        review = review_identity(ws, ["cand"], world.identity_features)
        kept = select_kept(ws, ["cand"])
        bad = {n for n, f in faults.items() if f != "none"}
        train = ws.catalog.images(split="train", origin="synthetic")
        assert {Path(r.source).name for r in train}.isdisjoint(bad)  # every fault removed
        assert review["reject"] >= sum(f == "off-model" for f in faults.values())
        assert kept["kept"] == len(train) >= 16 - len(bad) - 2
        tags = tag_set(ws, "pip", world.tagger)
        assert tags["images"] == len(train) and tags["frequency"]["pip"] == len(train)
        caps = {r.sha256: r.caption for r in ws.catalog.images(split="train")}
        assert all(c.startswith("pip, solo, ") for c in caps.values())
        res = export_kohya(ws, tmp_path / "kohya", name="pip", repeats=10, epochs=10,
                           resolution=64)
    folder = Path(res["folder"])
    assert folder.name == "10_pip" and res["steps"] == 10 * -(-len(train) * 10 // 4)
    assert (tmp_path / "kohya" / "dataset.toml").read_text().count("num_repeats = 10") == 1
    assert "--max_train_epochs=10" in (tmp_path / "kohya" / "train_command.sh").read_text()
    fresh = Workspace.create(tmp_path / "back", workspace_config("back"))
    with fresh:
        rep = ingest(fresh, tmp_path / "kohya" / "img", progress=False)
        assert rep.ingested == len(train) and rep.captions_read == len(train)
        back = {r.sha256: r.caption for r in fresh.catalog.images()}
    assert back == caps
