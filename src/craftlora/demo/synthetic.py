"""Plan, generate and QC the demo's synthetic sets, and render the oracle set.

``minimal`` makes 5 % of real-train + synthetic, ``comprehensive`` 10 % (the dual-dataset
plan), each with a margin for images QC rejects (``generate.plan_write``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from craftlora.demo.settings import DemoSettings

SETS = ("minimal", "comprehensive")


def make_demo_plan(ws_dir: Path, plan_path: Path, s: DemoSettings, lora_tag: str
                   ) -> dict[str, Any]:
    """The dual plan (minimal + comprehensive) sized by ``s.shares``, the LoRA in every prompt."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.generate.plan_write import write_plan
    from craftlora.generate.prompts import PromptSpec

    g = s.generation
    with Workspace.open(ws_dir) as ws:
        _, summary = write_plan(
            ws, plan_path, strategy="dual", shares=s.shares, margin=s.generate_margin,
            prompt=PromptSpec(loras=[lora_tag]), seed=s.world_seed, force=True, model=s.model,
            generation={"sampler": g.sampler, "steps": g.steps, "cfg": g.cfg,
                        "clip_skip": g.clip_skip, "batch_size": g.batch_size})
    return {**summary, "lora_tag": lora_tag}


def run_generation(out: Path, ws_dir: Path, plan_path: Path, s: DemoSettings,
                   progress: bool) -> dict[str, Any]:
    from craftlora.generate.parallel import generate_sets

    return generate_sets(ws_dir, plan_path, SETS, s.model, Path(out) / "loras", s.workers,
                         progress)


def run_oracle(ws_dir: Path, n: int, s: DemoSettings, progress: bool) -> dict[str, Any]:
    """Fresh true renders (the ideal generator) as synthetic set ``oracle``."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.mini.oracle import add_render_set

    with Workspace.open(ws_dir) as ws:
        return add_render_set(ws, "oracle", n, seed=10, size=s.size, progress=progress)


def run_quality_control(ws_dir: Path, judge: Path, sets: list[str], progress: bool
                        ) -> dict[str, Any]:
    """QC every set with the sharpness limit matched to the decoder that made it (``qc``)."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.qc import run_qc

    out: dict[str, Any] = {}
    with Workspace.open(ws_dir) as ws:
        for name in sets:
            summ = run_qc(ws, name, judge=judge, sharpness_reference="decoder",
                          progress=progress)
            out[name] = {k: summ[k] for k in ("n", "passed_all", "pass_rate", "checks",
                                              "failures_by_reason", "sharpness_limit")}
    return out
