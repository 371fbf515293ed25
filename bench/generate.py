"""Generation throughput: ``craftlora generate`` vs a plain diffusers pipeline loop.

    .venv/bin/python -m bench.generate [--n 32] [--batch 16] [--steps 20] [--model tiny|mini|DIR]
                                       [--device cpu|cuda] [--levers bf16]

Both arms make the same images: the same plan prompts, seeds, negative prompt, batch size,
sampler (``DPM++ 2M Karras`` set through ``craftlora.generate.samplers`` on both), steps, CFG
and size, on the same pipeline object:

- ``diffusers_loop``: ``pipe(prompt=[...], negative_prompt=[...], generator=[...])`` per batch,
  each image saved as PNG, as a user of ``StableDiffusionPipeline`` writes it;
- ``craftlora``: the full runner (``craftlora.generate.runner.generate``: prompt encoding,
  sampling, PNG write, catalog row with provenance) into a fresh workspace, with the plan's
  ``[generation] levers`` (``craftlora.models.fast``) set from ``--levers``.

``tiny`` is a random 32×32 SD-style model built from ``craftlora.models.tiny`` (no download);
``mini`` is the bundled base. Prints one JSON document and writes bench-out/generate.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from craftlora.catalog.workspace import Workspace
from craftlora.config import Attribute, WorkspaceConfig
from craftlora.generate.plan_model import GenerationSettings, Plan, PlanEntry, PlanSet, save_plan
from craftlora.generate.runner import Job, generate, plan_jobs
from craftlora.generate.samplers import set_sampler
from craftlora.models.loader import device_name

SAMPLER = "DPM++ 2M Karras"


def _pipe(model: str):
    if model == "tiny":
        from craftlora.models.tiny import TinySpec, build_tiny_pipeline

        return build_tiny_pipeline(TinySpec(), seed=0), "tiny TinySpec() random weights"
    from craftlora.models.loader import load_components

    return load_components(model).pipeline(), model


def workspace_config() -> WorkspaceConfig:
    return WorkspaceConfig(
        name="bench",
        caption_template="a {colour} {thing}",
        attributes={"colour": Attribute(values=["red", "blue", "white"]),
                    "thing": Attribute(values=["vase", "bowl"])},
    )


def bench_plan(n: int, steps: int, batch: int, *, size: int | None = None, seed: int = 0,
               levers: list[str] | None = None) -> Plan:
    """Two prompts, ``n`` images in all, A1111 clip skip 1 (diffusers' default)."""
    half = n // 2
    return Plan(
        generation=GenerationSettings(steps=steps, batch_size=batch, cfg=7.0, sampler=SAMPLER,
                                      clip_skip=1, width=size, height=size, seed=seed,
                                      levers=levers or []),
        sets=[PlanSet(name="bench", entries=[
            PlanEntry(id="a", tier="general", count=half,
                      attributes={"colour": "white", "thing": "vase"}),
            PlanEntry(id="b", tier="general", count=n - half,
                      attributes={"colour": "blue", "thing": "bowl"}),
        ])],
    )


def jobs_of(plan: Plan, work: Path) -> list[Job]:
    """The plan's images (prompt text, seed) in plan order."""
    with Workspace.create(work, workspace_config()) as ws:
        return plan_jobs(ws, plan, plan.sets[0], None)


def diffusers_loop(pipe: Any, plan: Plan, jobs: list[Job], out: Path, size: int) -> float:
    """The plain baseline: one pipeline call per batch, PNGs saved; returns seconds."""
    g = plan.generation
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i in range(0, len(jobs), g.batch_size):
        batch = jobs[i:i + g.batch_size]
        images = pipe(prompt=[j.text for j in batch],
                      negative_prompt=[plan.prompt.negative] * len(batch),
                      num_inference_steps=g.steps, guidance_scale=g.cfg,
                      generator=[torch.Generator("cpu").manual_seed(j.seed) for j in batch],
                      height=size, width=size).images
        for j, img in zip(batch, images, strict=True):
            img.save(out / f"{j.gen_id}.png")
    return time.perf_counter() - t0


def craftlora_run(pipe: Any, plan_path: Path, ws_dir: Path, n: int
                  ) -> tuple[float, float, dict[str, str]]:
    """The runner into a fresh workspace; returns (seconds end to end, the runner's own
    sampling-loop images/s (without its one-off model fingerprint), the levers record that
    the images' provenance carries)."""
    with Workspace.create(ws_dir, workspace_config()) as ws:
        t0 = time.perf_counter()
        r = generate(ws, plan_path, pipe=pipe, progress=False)
        dt = time.perf_counter() - t0
        made = ws.catalog.images(origin="synthetic")
    if r.made != n:
        raise RuntimeError(f"craftlora arm made {r.made} of {n} images: {r.to_dict()}")
    return dt, r.images_per_s, made[0].provenance.get("levers", {})


def warm_up(pipe: Any, size: int) -> None:
    """First-call allocations outside every timing."""
    pipe(prompt="warm up", num_inference_steps=1, height=size, width=size,
         generator=torch.Generator("cpu").manual_seed(0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    ap.add_argument("--levers", default="", help="comma list of craftlora.models.fast "
                                                 "levers; default none (the runner as shipped)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    levers = [x for x in args.levers.split(",") if x]
    pipe, model_desc = _pipe(args.model)
    pipe.to(args.device)
    pipe.set_progress_bar_config(disable=True)
    set_sampler(pipe, SAMPLER)
    size = pipe.unet.config.sample_size * 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    plan = bench_plan(args.n, args.steps, args.batch, size=size, levers=levers)
    out: dict = {"model": model_desc, "images": args.n, "batch": args.batch,
                 "steps": args.steps, "sampler": SAMPLER, "size": size,
                 "torch_threads": torch.get_num_threads(), "device": device_name(args.device)}
    with tempfile.TemporaryDirectory() as tmp:
        plan_path = Path(tmp) / "plan.toml"
        save_plan(plan, plan_path)
        jobs = jobs_of(plan, Path(tmp) / "jobs")
        warm_up(pipe, size)
        dt = diffusers_loop(pipe, plan, jobs, Path(tmp) / "plain", size)
        out["diffusers_loop"] = {"seconds": round(dt, 3), "images_per_s": round(args.n / dt, 3)}
        dt, loop_rate, record = craftlora_run(pipe, plan_path, Path(tmp) / "ws", args.n)
        out["craftlora"] = {"seconds": round(dt, 3), "images_per_s": round(args.n / dt, 3),
                            "loop_images_per_s": round(loop_rate, 3), "levers": record}
    out["speedup"] = round(out["craftlora"]["images_per_s"]
                           / out["diffusers_loop"]["images_per_s"], 3)
    Path("bench-out").mkdir(exist_ok=True)
    Path("bench-out/generate.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
