"""Plan, generate and QC the demo's synthetic sets, and render the oracle set.

The study's two sets (570 targeted, 2,500 comprehensive images beside 25,877 real ones) are
scaled as shares of the final training set: ``minimal`` makes 5 % of real-train + synthetic,
``comprehensive`` 10 % (the dual-dataset plan), each with a margin for images QC rejects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from craftlora.demo.settings import DemoSettings

SETS = ("minimal", "comprehensive")


def needed(n_real_train: int, share: float) -> int:
    """Synthetic images that make ``share`` of the final training set (as the mixer counts)."""
    from craftlora.classify.mixing import synthetic_count

    return synthetic_count(n_real_train, share, None)


def make_demo_plan(ws_dir: Path, plan_path: Path, s: DemoSettings, lora_tag: str
                   ) -> dict[str, Any]:
    """The dual plan (minimal + comprehensive) with the LoRA tag in every prompt."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.generate.plan_model import save_plan
    from craftlora.generate.planner import DualConfig, make_plan
    from craftlora.generate.prompts import PromptSpec, build_prompt

    with Workspace.open(ws_dir) as ws:
        n_train = len(ws.catalog.images(split="train", origin="real"))
        want = [needed(n_train, r) for r in s.shares]
        make = [int(round(w * (1 + s.generate_margin))) + 2 for w in want]
        dual = DualConfig(minimal_total=make[0], comprehensive_total=make[1])
        plan = make_plan(ws, strategy="dual", dual=dual, prompt=PromptSpec(loras=[lora_tag]),
                         seed=s.world_seed)
        g = s.generation
        plan.generation = plan.generation.model_copy(update={
            "sampler": g.sampler, "steps": g.steps, "cfg": g.cfg, "clip_skip": g.clip_skip,
            "batch_size": g.batch_size, "seed": s.world_seed})
        preview = {(st.name, e.id): build_prompt(ws.config, e.attributes, plan.prompt)
                   for st in plan.sets for e in st.entries}
        save_plan(plan, plan_path, preview)
    return {
        "plan": str(plan_path), "real_train": n_train,
        "sets": {st.name: {"images": st.total, "combinations": len(st.entries),
                           "needed_for_share": w, "share": r}
                 for st, w, r in zip(plan.sets, want, s.shares, strict=True)},
        "notes": plan.notes, "lora_tag": lora_tag,
        "example_prompt": next(iter(preview.values()), ""),
    }


def generate_shard(ws_dir: str, plan_path: str, model: str, lora_dir: str, shard: int,
                   count: int, report: Any = None) -> dict[str, Any]:
    """One process's slice of every set of the plan (resumable)."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.generate.runner import generate, pipeline_fingerprint
    from craftlora.models.loader import load_components

    pipe = load_components(model).pipeline()
    model_hash = pipeline_fingerprint(pipe)
    out: dict[str, Any] = {}
    with Workspace.open(ws_dir) as ws:
        for name in SETS:
            r = generate(ws, plan_path, name, pipe=pipe, model=model, model_hash=model_hash,
                         lora_dirs=[lora_dir], shard=(shard, count), progress=False,
                         on_batch=report)
            if report is not None and r.already:
                report(r.already)
            out[name] = r.to_dict()
    return out


def run_generation(out: Path, ws_dir: Path, plan_path: Path, s: DemoSettings,
                   progress: bool) -> dict[str, Any]:
    from craftlora.generate.plan_model import load_plan
    from craftlora.runtime.workers import run_parallel

    plan = load_plan(plan_path)
    total = sum(st.total for st in plan.sets)
    args = [(str(ws_dir), str(plan_path), s.model, str(Path(out) / "loras"), i, s.workers)
            for i in range(s.workers)]
    parts = run_parallel(generate_shard, args, total=total, desc="generate synthetic sets",
                         progress=progress)
    res: dict[str, Any] = {}
    for name in SETS:
        rows = [p[name] for p in parts]
        made = sum(r["made"] for r in rows)
        wall = max(r["wall_s"] for r in rows)
        res[name] = {"planned": rows[0]["planned"], "made": made,
                     "already_present": sum(r["already_present"] for r in rows),
                     "duplicates": sum(len(r["duplicates"]) for r in rows),
                     "images_per_s_per_process": [r["images_per_s"] for r in rows],
                     "wall_s": wall}
    return res


def run_oracle(ws_dir: Path, n: int, s: DemoSettings, progress: bool) -> dict[str, Any]:
    """Fresh true renders (the ideal generator) as synthetic set ``oracle``."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.mini.oracle import add_render_set

    with Workspace.open(ws_dir) as ws:
        return add_render_set(ws, "oracle", n, seed=10, size=s.size, progress=progress)


def run_quality_control(ws_dir: Path, judge: Path, sets: list[str], model: str,
                        progress: bool, decoder_images: int = 128) -> dict[str, Any]:
    """QC every set; sets the generator made get the decoder-matched sharpness limit.

    The limit for generated sets is the configured one scaled by how much Laplacian variance
    the model's VAE keeps on ``decoder_images`` real training images (``qc.decoder``); the
    oracle set (true renders, never decoded) keeps the configured limit.
    """
    from craftlora.catalog.workspace import Workspace
    from craftlora.metrics.sets import load_images
    from craftlora.models.loader import load_components
    from craftlora.qc import run_qc
    from craftlora.qc.decoder import decoder_matched_factor, roundtrip_sharpness

    out: dict[str, Any] = {}
    with Workspace.open(ws_dir) as ws:
        cfg = ws.config.qc
        _, real, errors = load_images(
            ws, ws.catalog.images(origin="real", split="train")[:decoder_images])
        dec = {**roundtrip_sharpness(load_components(model).vae, real,
                                     analysis_size=cfg.analysis_size),
               "skipped": errors}  # each names the file and why it did not decode
        matched = cfg.model_copy(update={
            "sharpness_factor": decoder_matched_factor(cfg.sharpness_factor, dec["ratio"])})
        for name in sets:
            decoded = name in SETS
            set_cfg = matched if decoded else cfg
            summ = run_qc(ws, name, judge=judge, config=set_cfg, progress=progress)
            out[name] = {k: summ[k] for k in ("n", "passed_all", "pass_rate", "checks",
                                              "failures_by_reason")}
            out[name]["sharpness_limit"] = {
                "factor": set_cfg.sharpness_factor,
                "decoder_matched": decoded, "decoder": dec if decoded else None}
    return out
