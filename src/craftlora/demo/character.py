"""`craftlora demo character`: spec → prompts → candidates → selection → tags → LoRA → eval
on the mini character, composed from the character, generate, qc, train and metrics stages.

Candidates on the mini world: the mini base cannot draw a character it never saw, so the
capable text-to-image generator of seed 004 is stood in for by the mini world's renderer of
the spec (drawing each candidate prompt, with a seeded share of watermarks, warps and drifted
features, the faults the seed reports); the base also draws every candidate prompt through
`generate`. QC and the identity detectors (as an automatic reviewer) decide what is kept.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from craftlora.catalog.ingest import ingest
from craftlora.catalog.workspace import Workspace
from craftlora.character.evaluate import Shot, evaluate, lpips_net, report_html, set_shots
from craftlora.character.export import export_kohya
from craftlora.character.prompts import combinations, prompt_plan, write_prompts
from craftlora.character.select import review_identity, select_kept
from craftlora.character.spec import CHARACTER_DIR, init_character, load_character
from craftlora.character.tags import tag_chart, tag_set
from craftlora.data.atomic import atomic_write_json
from craftlora.generate.plan_model import load_plan
from craftlora.generate.runner import generate
from craftlora.mini.canvas import png_bytes, write_file
from craftlora.mini.character import world
from craftlora.models.loader import load_components
from craftlora.models.roundtrip import roundtrip_images
from craftlora.qc.runner import run_qc
from craftlora.train.config import DataSettings, LoraSettings, OptimSettings, TrainConfig
from craftlora.train.trainer import train

LORA = "pip"
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj",
                "ff.net.2", "conv1", "conv2", "time_emb_proj"]


class CharacterDemoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    candidates: int = 48  # prompts; the renderer and the base each draw one image per prompt
    reference: int = 24  # true renders: the character sheet QC reads its limits from
    eval_prompts: int = 8
    per_prompt: int = 4
    watermark_rate: float = 0.12
    distortion_rate: float = 0.12
    off_model_rate: float = 0.15
    repeats: int = 10
    epochs: int = 40  # 20 read identity 0.43 (63 % of the VAE ceiling); 40 read 0.64 (95 %)
    batch_size: int = 8
    rank: int = 32
    lr: float = 2e-3
    steps: int = 20  # sampling
    cfg: float = 1.75
    model: str = "mini"
    seed: int = 0


PRESETS = {"full": CharacterDemoSettings(),
           "quick": CharacterDemoSettings(candidates=32, reference=16, eval_prompts=6,
                                          epochs=10),
           "tiny": CharacterDemoSettings(candidates=12, reference=8, eval_prompts=2,
                                         per_prompt=2, repeats=1, epochs=1, batch_size=4,
                                         steps=2)}


def _candidates(ws: Workspace, out: Path, s: CharacterDemoSettings, plan_path: Path
                ) -> dict[str, Any]:
    """Rendered candidates (ingested) and the base's (generated), both as synthetic sets."""
    plan = load_plan(plan_path)
    entries = [(e.id, e.attributes) for e in plan.get_set("candidates").entries]
    folder = out / "renders"
    faults = world.render_candidates(folder, entries, seed=s.seed,
                                     watermark_rate=s.watermark_rate,
                                     distortion_rate=s.distortion_rate,
                                     off_model_rate=s.off_model_rate)
    ingest(ws, folder, origin="synthetic", set_name="candidates-render", progress=False,
           provenance={"generator": "mini character renderer (stands in for a capable "
                                    "text-to-image model)"})
    gen = generate(ws, plan_path, "candidates", model=s.model, progress=False)
    counts: dict[str, int] = {}
    for f in faults.values():
        counts[f] = counts.get(f, 0) + 1
    return {"render_faults": counts, "base_made": gen.made}


def _reference(ws: Workspace, out: Path, s: CharacterDemoSettings) -> None:
    """True renders of random combinations as the real reference set (QC's limits)."""
    folder = out / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(combinations(s.reference, s.seed + 7)):
        write_file(folder / f"ref{i:03d}.png",
                   png_bytes(world.true_renders(a, 1, 90_000 + i)[0]))
    ingest(ws, folder, origin="real", set_name="reference", progress=False)


def _train(ws_dir: Path, out: Path, s: CharacterDemoSettings) -> dict[str, Any]:
    cfg = TrainConfig(
        name=LORA, mode="lora", model=s.model, output_dir=out / "lora", seed=s.seed,
        epochs=s.epochs, batch_size=s.batch_size, checkpoint_every=100, keep_last=1,
        log_every=10,
        lora=LoraSettings(rank=s.rank, alpha=float(s.rank), target_modules=UNET_TARGETS,
                          text_encoder=True),
        data=DataSettings(workspace=ws_dir.resolve(), resolution=64, split="train",
                          origin="synthetic", keep_tokens=1, shuffle_caption=True,
                          caption_tag_dropout_rate=0.1, num_repeats=s.repeats),
        optim=OptimSettings(lr=s.lr, scheduler="cosine", warmup_steps=20, weight_decay=0.0))
    resume = "latest" if (out / "lora" / "checkpoints").is_dir() else None
    res = train(cfg, resume=resume)
    loras = ws_dir / "loras"
    loras.mkdir(exist_ok=True)
    shutil.copyfile(res["outputs"]["lora_diffusers"], loras / f"{LORA}.safetensors")
    return {"steps": res["step"], "images": res["n_images"], "repeats": s.repeats,
            "epochs": s.epochs, "batch_size": s.batch_size,
            "train_s": res["timings"]["train_s"]}


def run_character_demo(out: Path, s: CharacterDemoSettings, console: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = Path(out)
    ws_dir = out / "workspace"
    spec_path = out / "character-spec.json"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(spec_path, world.SPEC)
    init_character(ws_dir, spec_path, world.TRIGGER)
    spec, trigger = load_character(ws_dir)
    plan = prompt_plan(spec, trigger, candidates=s.candidates, eval_prompts=s.eval_prompts,
                       per_prompt=s.per_prompt, lora=LORA, model=s.model, seed=s.seed,
                       generation={"steps": s.steps, "cfg": s.cfg, "sampler": "DDIM",
                                   "clip_skip": 1, "batch_size": 16})
    plan_path = write_prompts(ws_dir / CHARACTER_DIR / "prompts.toml", plan)
    console.print(f"1. spec + prompts → {plan_path}")
    result: dict[str, Any] = {"settings": s.model_dump()}
    with Workspace.open(ws_dir) as ws:
        _reference(ws, out, s)
        result["candidate_faults"] = _candidates(ws, out, s, plan_path)
        sets = ["candidates-render", "candidates"]
        result["qc"] = {n: run_qc(ws, n)["pass_rate"] for n in sets}
        result["review"] = review_identity(ws, sets, world.identity_features)
        kept = select_kept(ws, sets)
        console.print(f"2. candidates {kept['candidates']}, kept {kept['kept']} ({kept['sets']})")
        tags = tag_set(ws, trigger, world.tagger)
        tag_chart(tags["frequency"], out / "tags.png")
        result["export"] = export_kohya(ws, out / "kohya", name=trigger, repeats=s.repeats,
                                        epochs=s.epochs, resolution=64)
        console.print(f"3. tags: {tags['tags_per_image']:.2f} per image → {out / 'tags.png'}")
    result["train"] = _train(ws_dir, out, s)
    console.print(f"4. LoRA: {result['train']['steps']} steps")
    with Workspace.open(ws_dir) as ws:
        for name in ("eval-base", "eval-lora"):
            generate(ws, plan_path, name, model=s.model, progress=False)
            # evaluation images are never trained on
            ws.catalog.set_splits({r.id: None for r in ws.catalog.images(set_name=name)})
        shots = {"base": set_shots(ws, "eval-base"), "lora": set_shots(ws, "eval-lora")}
    held = load_plan(plan_path).get_set("eval-lora").entries
    shots["true"] = world.true_shots(held, s.per_prompt)
    vae = load_components(s.model).vae  # what any generation of this base can at best show
    shots["true-vae"] = [Shot(t.prompt_id, t.tags, im) for t, im in
                         zip(shots["true"], roundtrip_images(vae, [t.image for t in shots["true"]]),
                             strict=True)]
    figs = evaluate(shots, world.identity_features, world.tag_matches, lpips_net(console.print))
    report_html(shots, figs, out / "character.html", f"character {trigger}: base vs LoRA")
    summary = {
        "candidates": kept["candidates"], "kept": kept["kept"],
        "tags_per_image": tags["tags_per_image"],
        "identity": {k: figs[n]["identity"]["share"] for k, n in
                     (("base", "base"), ("lora", "lora"), ("ceiling", "true"),
                      ("ceiling_through_vae", "true-vae"))},
        "tag_adherence": {k: figs[k]["tag_adherence"] for k in ("base", "lora")},
        "diversity": {k: figs[n]["diversity"] for k, n in (("lora", "lora"), ("true", "true"))},
        "wall_s": round(time.perf_counter() - t0, 1),
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    atomic_write_json(out / "character.json", {**summary, "details": {**result, "eval": figs,
                                                                       "tags": tags,
                                                                       "selection": kept}})
    return summary
