"""Generation into the catalog with a real tiny diffusers pipeline: resume, LoRAs, sketches."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from craftlora.catalog.workspace import Workspace
from craftlora.config import Attribute, WorkspaceConfig
from craftlora.generate.claims import Claims
from craftlora.generate.plan_model import GenerationSettings, Plan, PlanEntry, PlanSet, save_plan
from craftlora.generate.prompts import LoraNotFoundError, PromptSpec
from craftlora.generate.runner import generate, plan_jobs


def _ws(tmp_path):
    cfg = WorkspaceConfig(
        name="t",
        caption_template="{glaze} glaze {type}",
        attributes={
            "glaze": Attribute(values=["white", "celadon"]),
            "type": Attribute(values=["bowl", "vase"]),
        },
    )
    return Workspace.create(tmp_path / "ws", cfg)


def _plan(tmp_path, counts=(3, 2), loras=(), sketch="", **gen):
    settings = dict(steps=2, batch_size=2, width=16, height=16, sampler="DPM++ 2M Karras", cfg=7.0,
                    clip_skip=2)  # the study's SD 1.5 settings, not the mini preset's
    settings.update(gen)
    plan = Plan(
        generation=GenerationSettings(**settings),
        prompt=PromptSpec(loras=list(loras), morphology={"type": {"vase": "tall neck"}}),
        sets=[
            PlanSet(
                name="syn",
                entries=[
                    PlanEntry(
                        id="a",
                        tier="extreme_rare",
                        count=counts[0],
                        attributes={"glaze": "white", "type": "vase"},
                        sketch=sketch,
                    ),
                    PlanEntry(
                        id="b",
                        tier="confusion",
                        count=counts[1],
                        attributes={"glaze": "celadon", "type": "bowl"},
                        sketch=sketch,
                    ),
                ],
            )
        ],
    )
    path = tmp_path / "plan.toml"
    save_plan(plan, path)
    return path


def test_generate_registers_with_provenance_and_resume_makes_no_duplicates(tmp_path, gen_tiny_pipe):
    ws = _ws(tmp_path)
    plan = _plan(tmp_path)
    # a temp file a killed writer left behind
    orphan = ws.root / "synthetic" / "syn" / "a" / ".tmp-dead"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x")
    r1 = generate(ws, plan, pipe=gen_tiny_pipe, limit=3, progress=False)
    assert (r1.made, r1.already, r1.orphans_removed) == (3, 0, 1)
    assert not orphan.exists()
    r2 = generate(ws, plan, pipe=gen_tiny_pipe, progress=False)
    assert (r2.made, r2.already) == (2, 3)
    r3 = generate(ws, plan, pipe=gen_tiny_pipe, progress=False)
    assert (r3.made, r3.already) == (0, 5)
    recs = ws.catalog.images(set_name="syn")
    assert len(recs) == 5 and ws.catalog.count() == 5
    assert len({r.provenance["gen_id"] for r in recs}) == 5
    assert len({r.provenance["seed"] for r in recs}) == 5
    for r in recs:
        p = r.provenance
        assert r.origin == "synthetic" and r.split == "train"
        assert p["sampler"] == "DPM++ 2M Karras" and p["scheduler"] == "DPMSolverMultistepScheduler"
        assert (p["steps"], p["cfg"], p["clip_skip"]) == (2, 7.0, 2)
        assert p["negative"] == "low quality, blurry, modern, damaged, cracked"
        assert len(p["model_hash"]) == 64
        f = ws.resolve(r.path)
        assert hashlib.sha256(f.read_bytes()).hexdigest() == r.sha256
        assert Image.open(f).size == (16, 16)
    vase = [r for r in recs if r.attributes == {"glaze": "white", "type": "vase"}]
    assert len(vase) == 3 and vase[0].provenance["prompt"] == "white glaze vase, tall neck"


def test_seeds_ids_are_deterministic_and_images_repeat(tmp_path, gen_pipe_factory):
    build_pipe = gen_pipe_factory
    ws = _ws(tmp_path)
    plan = _plan(tmp_path, counts=(2, 0))
    a = generate(ws, plan, pipe=build_pipe(tmp_path / "p1"), batch_size=2, progress=False)
    first = {r.provenance["gen_id"]: r.sha256 for r in ws.catalog.images()}
    ws2 = Workspace.create(tmp_path / "ws2", ws.config)
    generate(ws2, plan, pipe=build_pipe(tmp_path / "p2"), batch_size=1, progress=False)
    second = {r.provenance["gen_id"]: r for r in ws2.catalog.images()}
    assert a.made == 2 and set(first) == set(second)
    # batched vs one at a time: same ids and seeds, pixels equal within float noise
    for gid, rec in second.items():
        x = np.asarray(Image.open(ws.resolve(_path(ws, gid))), dtype=int)
        y = np.asarray(Image.open(ws2.resolve(rec.path)), dtype=int)
        assert np.abs(x - y).max() <= 2


def test_bf16_lever_is_recorded_and_leaves_the_pipeline_in_float32(tmp_path, gen_pipe_factory):
    pipe = gen_pipe_factory(tmp_path / "p")
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    out = {}
    for levers in ([], ["bf16"]):
        ws = _ws(tmp_path / f"{len(levers)}")
        generate(ws, _plan(tmp_path, counts=(2, 0), levers=levers), pipe=pipe, progress=False)
        recs = ws.catalog.images()
        want = {"bf16": "on"} if levers else None
        assert [r.provenance.get("levers") for r in recs] == [want, want]
        out[len(levers)] = [np.asarray(Image.open(ws.resolve(r.path)), dtype=int) for r in recs]
    # bfloat16 rounds the UNet's arithmetic: close to float32's images, not equal to them
    diffs = [np.abs(x - y).mean() for x, y in zip(out[0], out[1], strict=True)]
    assert 0 < max(diffs) < 8, diffs
    after = pipe.unet.state_dict()
    assert all(v.dtype == torch.float32 and torch.equal(v, after[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="unknown speed lever.*turbo"):
        _plan(tmp_path, levers=["turbo"])


def _path(ws, gid):
    return next(r.path for r in ws.catalog.images() if r.provenance["gen_id"] == gid)


def test_shards_are_disjoint_and_cover_the_set(tmp_path, gen_tiny_pipe):
    ws = _ws(tmp_path)
    plan = _plan(tmp_path, counts=(3, 2))
    r0 = generate(ws, plan, pipe=gen_tiny_pipe, shard=(0, 2), progress=False)
    ids0 = {r.provenance["gen_id"] for r in ws.catalog.images()}
    r1 = generate(ws, plan, pipe=gen_tiny_pipe, shard=(1, 2), progress=False)
    ids = {r.provenance["gen_id"] for r in ws.catalog.images()}
    assert (r0.made, r1.made) == (3, 2)
    assert len(ids0) == 3 and len(ids) == 5 and ids0 < ids


def _save_lora(tmp_path, name, build_pipe):
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = build_pipe(tmp_path / "lora-src")
    pipe.unet.add_adapter(
        LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    )
    torch.manual_seed(1)
    for n, p in pipe.unet.named_parameters():
        if "lora_" in n:
            p.data.normal_(0, 0.5)
    sd = convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet))
    out = tmp_path / "loras"
    StableDiffusionPipeline.save_lora_weights(
        out, unet_lora_layers=sd, weight_name=f"{name}.safetensors", safe_serialization=True
    )
    return out / f"{name}.safetensors"


def test_lora_tags_load_weighted_adapters_and_missing_lora_is_named(tmp_path, gen_pipe_factory):
    build_pipe = gen_pipe_factory
    ws = _ws(tmp_path)
    lora = _save_lora(tmp_path, "glazetype", build_pipe)
    base = generate(
        ws, _plan(tmp_path, counts=(1, 0)), pipe=build_pipe(tmp_path / "b"), progress=False
    )
    assert base.made == 1
    ws2 = Workspace.create(tmp_path / "ws2", ws.config)
    plan = _plan(tmp_path, counts=(1, 0), loras=["<lora:glazetype:0.4>"])
    r = generate(
        ws2, plan, pipe=build_pipe(tmp_path / "c"), lora_dirs=[lora.parent], progress=False
    )
    assert r.made == 1
    (rec,) = ws2.catalog.images()
    (l0,) = rec.provenance["loras"]
    assert l0["name"] == "glazetype" and l0["unet"] == 0.4
    assert l0["sha256"] == hashlib.sha256(lora.read_bytes()).hexdigest()
    assert rec.provenance["prompt"].endswith("<lora:glazetype:0.4>")
    assert "<lora" not in rec.caption
    assert rec.sha256 != ws.catalog.images()[0].sha256  # the LoRA changed the image
    ws3 = Workspace.create(tmp_path / "ws3", ws.config)
    plan = _plan(tmp_path, counts=(1, 0), loras=["<lora:nosuch:0.4>"])
    with pytest.raises(LoraNotFoundError, match="'nosuch'"):
        generate(ws3, plan, pipe=build_pipe(tmp_path / "d"), progress=False)
    assert ws3.catalog.count() == 0


def test_sketch_guidance_records_contour_adherence(tmp_path, gen_tiny_pipe):
    from diffusers import ControlNetModel

    ws = _ws(tmp_path)
    sk = Image.new("RGB", (16, 16), "white")
    ImageDraw.Draw(sk).ellipse((3, 3, 12, 12), outline="black")
    sk.save(tmp_path / "sketch.png")
    cn = ControlNetModel.from_unet(gen_tiny_pipe.unet, conditioning_embedding_out_channels=(4, 8))
    plan = _plan(tmp_path, counts=(2, 0), sketch=str(tmp_path / "sketch.png"))
    r = generate(ws, plan, pipe=gen_tiny_pipe, controlnet=cn, progress=False)
    assert r.made == 2 and len(r.contour_f1) == 2
    for rec in ws.catalog.images():
        p = rec.provenance
        assert (
            p["sketch"]["sha256"]
            == hashlib.sha256((tmp_path / "sketch.png").read_bytes()).hexdigest()
        )
        assert 0.0 <= p["contour"]["tolerant_f1"] <= 1.0 and p["contour"]["radius"] == 2
        assert len(p["controlnet"]["sha256"]) == 64
    # --sketch FILE: one sketch for every entry of a plan that names none
    ws2 = Workspace.create(tmp_path / "ws2", ws.config)
    plain = _plan(tmp_path, counts=(1, 1))
    r2 = generate(
        ws2,
        plain,
        pipe=gen_tiny_pipe,
        controlnet=cn,
        sketch=tmp_path / "sketch.png",
        progress=False,
    )
    assert r2.made == 2 and len(r2.contour_f1) == 2
    with pytest.raises(ValueError, match="needs a ControlNet"):
        ws3 = Workspace.create(tmp_path / "ws3", ws.config)
        generate(ws3, plain, pipe=gen_tiny_pipe, sketch=tmp_path / "sketch.png", progress=False)


def test_bad_plan_values_fail_before_generating(tmp_path, gen_tiny_pipe):
    ws = _ws(tmp_path)
    plan = _plan(tmp_path)
    text = plan.read_text().replace('glaze = "celadon"', 'glaze = "purple"')
    plan.write_text(text)
    with pytest.raises(ValueError, match="entry 'b'.*'purple'"):
        generate(ws, plan, pipe=gen_tiny_pipe, progress=False)
    assert ws.catalog.count() == 0


def test_plan_jobs_prompt_override_and_seed_stability(tmp_path):
    ws = _ws(tmp_path)
    plan_path = _plan(tmp_path, counts=(2, 1))
    from craftlora.generate.plan_model import load_plan

    plan = load_plan(plan_path)
    jobs = plan_jobs(ws, plan, plan.sets[0], None)
    plan.sets[0].entries[1].count = 5  # more images of b leave a's seeds alone
    plan.sets[0].entries[0].prompt = "custom ((vase:1.2)) <lora:x:0.5>"
    jobs2 = plan_jobs(ws, plan, plan.sets[0], None)
    assert [j.seed for j in jobs[:2]] == [j.seed for j in jobs2[:2]]
    assert jobs2[0].text == "custom ((vase:1.2))" and jobs2[0].loras[0].unet == 0.5


def test_outline_controlnet_with_segmenter_scores_the_vessel(tmp_path, gen_tiny_pipe):
    """A ControlNet folder shipped with ``silhouette.safetensors`` beside it (the mini layout):
    every sketch-guided image also gets the vessel-outline F1, and the run reports its mean."""
    pytest.importorskip("craftlora.mini.vessel")
    from diffusers import ControlNetModel
    from recipe_loader import load_recipe

    stage_segmenter = load_recipe("build_mini_controlnet").stage_segmenter

    shipped = tmp_path / "shipped"
    cn = ControlNetModel.from_unet(gen_tiny_pipe.unet, conditioning_embedding_out_channels=(4, 8))
    cn.save_pretrained(shipped / "controlnet", safe_serialization=True)
    stage_segmenter(shipped, 16, images=8, steps=2)
    ws = _ws(tmp_path)
    sk = Image.new("RGB", (16, 16), "white")
    ImageDraw.Draw(sk).ellipse((3, 3, 12, 12), outline="black")
    sk.save(tmp_path / "sketch.png")
    plan = _plan(tmp_path, counts=(1, 1), sketch=str(tmp_path / "sketch.png"))
    r = generate(ws, plan, pipe=gen_tiny_pipe, controlnet=shipped / "controlnet", progress=False)
    assert r.made == 2 and len(r.vessel_f1) == 2
    for rec in ws.catalog.images():
        assert 0.0 <= rec.provenance["contour"]["vessel_tolerant_f1"] <= 1.0
    d = r.to_dict()
    assert d["contour_vessel_f1_mean"] == pytest.approx(sum(r.vessel_f1) / 2)


def test_claims_skip_live_runs_take_over_dead_ones_and_spare_live_temps(tmp_path):
    folder = tmp_path / "syn"
    (folder / "a").mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    mine = Claims(folder)
    temp = folder / "a" / ".tmp-in-flight"
    try:
        mine.dir.mkdir()
        (mine.dir / "id1").write_text(str(other.pid))  # a live run's claim
        (mine.dir / "id2").write_text("999999999")  # a dead run's claim
        (mine.dir / "id3").write_text("")  # a claim whose writer died mid-write
        temp.write_bytes(b"x")
        assert mine.clean_orphans() == 0 and temp.exists()  # the live run may own it
        with mine.locked():
            assert mine.take(["id1", "id2", "id3", "id4"], 2) == ["id2", "id3"]
            assert mine.take(["id1", "id4"], 2) == ["id4"]
        assert (mine.dir / "id2").read_text() == str(os.getpid())
        mine.release_all()
        assert sorted(p.name for p in mine.dir.iterdir()) == [".lock", "id1"]
    finally:
        other.kill()
        other.wait()
    assert mine.clean_orphans() == 1 and not temp.exists()  # its owner is gone now
