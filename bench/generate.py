"""Generation throughput: batched pipeline calls vs one image per call, same model, same run.

    .venv/bin/python -m bench.generate [--n 32] [--batch 16] [--steps 20] [--model tiny|mini|DIR]
                                       [--device cpu|cuda]

Both arms go through the full runner (`craftlora.generate.runner.generate`: prompt encoding,
sampling, PNG write, catalog row with provenance) on the same plan and seeds, each into a fresh
workspace; the baseline calls the pipeline once per image (batch size 1). ``tiny`` is a random
32×32 SD-style model built from ``craftlora.models.tiny`` (no download); ``mini`` is the bundled
base when present. Prints one JSON document and writes bench-out/generate.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from craftlora.catalog.workspace import Workspace
from craftlora.config import Attribute, WorkspaceConfig
from craftlora.generate.plan_model import GenerationSettings, Plan, PlanEntry, PlanSet, save_plan
from craftlora.generate.runner import generate
from craftlora.models.loader import device_name


def _pipe(model: str):
    if model == "tiny":
        from craftlora.models.tiny import TinySpec, build_tiny_pipeline

        return build_tiny_pipeline(TinySpec(), seed=0), "tiny TinySpec() random weights"
    from craftlora.models.loader import load_components

    return load_components(model).pipeline(), model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe, model_desc = _pipe(args.model)
    pipe.to(args.device)
    cfg = WorkspaceConfig(
        name="bench",
        caption_template="a {colour} {thing}",
        attributes={
            "colour": Attribute(values=["red", "blue", "white"]),
            "thing": Attribute(values=["vase", "bowl"]),
        },
    )
    half = args.n // 2
    plan = Plan(
        generation=GenerationSettings(steps=args.steps, batch_size=args.batch, cfg=7.0,
                                      sampler="DPM++ 2M Karras", clip_skip=2),
        sets=[
            PlanSet(
                name="bench",
                entries=[
                    PlanEntry(
                        id="a",
                        tier="general",
                        count=half,
                        attributes={"colour": "white", "thing": "vase"},
                    ),
                    PlanEntry(
                        id="b",
                        tier="general",
                        count=args.n - half,
                        attributes={"colour": "blue", "thing": "bowl"},
                    ),
                ],
            )
        ],
    )
    out: dict = {
        "model": model_desc,
        "images": args.n,
        "steps": args.steps,
        "sampler": plan.generation.sampler,
        "torch_threads": torch.get_num_threads(),
        "device": device_name(args.device),
    }
    with tempfile.TemporaryDirectory() as tmp:
        plan_path = Path(tmp) / "plan.toml"
        save_plan(plan, plan_path)
        # warm-up (first-call allocations) outside both timings
        with Workspace.create(Path(tmp) / "warm", cfg) as ws:
            generate(ws, plan_path, pipe=pipe, limit=2, batch_size=2, progress=False)
        for name, bs in (("one_at_a_time", 1), ("batched", args.batch)):
            with Workspace.create(Path(tmp) / name, cfg) as ws:
                t0 = time.perf_counter()
                r = generate(ws, plan_path, pipe=pipe, batch_size=bs, progress=False)
                dt = time.perf_counter() - t0
                assert r.made == args.n, r.to_dict()
                out[name] = {
                    "batch_size": bs,
                    "seconds": round(dt, 3),
                    "images_per_s": round(args.n / dt, 3),
                }
    out["speedup"] = round(out["batched"]["images_per_s"] / out["one_at_a_time"]["images_per_s"], 2)
    Path("bench-out").mkdir(exist_ok=True)
    Path("bench-out/generate.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
