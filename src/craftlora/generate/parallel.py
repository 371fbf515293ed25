"""Generate several sets of one plan in worker processes, each process a shard of every set."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from craftlora.catalog.workspace import Workspace
from craftlora.generate.plan_model import load_plan
from craftlora.generate.runner import generate, pipeline_fingerprint
from craftlora.models.loader import load_components
from craftlora.runtime.workers import run_parallel


def generate_shard(ws_dir: str, plan_path: str, model: str, lora_dir: str, sets: list[str],
                   shard: int, count: int, report: Any = None) -> dict[str, Any]:
    """One process's slice of every set (resumable)."""
    pipe = load_components(model).pipeline()
    model_hash = pipeline_fingerprint(pipe)
    out: dict[str, Any] = {}
    with Workspace.open(ws_dir) as ws:
        for name in sets:
            r = generate(ws, plan_path, name, pipe=pipe, model=model, model_hash=model_hash,
                         lora_dirs=[lora_dir], shard=(shard, count), progress=False,
                         on_batch=report)
            if report is not None and r.already:
                report(r.already)
            out[name] = r.to_dict()
    return out


def generate_sets(ws_dir: Path, plan_path: Path, sets: Sequence[str], model: str,
                  lora_dir: Path, workers: int, progress: bool = True) -> dict[str, Any]:
    """Every set of ``sets`` in ``workers`` processes; made, skipped and per-process rates."""
    plan = load_plan(plan_path)
    total = sum(st.total for st in plan.sets if st.name in sets)
    args = [(str(ws_dir), str(plan_path), model, str(lora_dir), list(sets), i, workers)
            for i in range(workers)]
    parts = run_parallel(generate_shard, args, total=total, desc="generate synthetic sets",
                         progress=progress)
    res: dict[str, Any] = {}
    for name in sets:
        rows = [p[name] for p in parts]
        res[name] = {"planned": rows[0]["planned"], "made": sum(r["made"] for r in rows),
                     "already_present": sum(r["already_present"] for r in rows),
                     "duplicates": sum(len(r["duplicates"]) for r in rows),
                     "images_per_s_per_process": [r["images_per_s"] for r in rows],
                     "wall_s": max(r["wall_s"] for r in rows)}
    return res
