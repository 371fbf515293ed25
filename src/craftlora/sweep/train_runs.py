"""Train every (training variant, seed) of a sweep once: ``runs/<train key>/seed-<s>/``.

A run counts as finished once its ``done.json`` exists (written after the LoRA is saved); a
rerun skips it. A run killed mid-way resumes from its newest complete checkpoint. Pending
runs are spread over ``workers`` processes of the one runner, each training its share in turn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from craftlora.data.atomic import atomic_write_json
from craftlora.runtime.workers import run_parallel
from craftlora.sweep.expand import Variant
from craftlora.train.config import load_train_config
from craftlora.train.trainer import train

DONE = "done.json"


def run_dir(out: Path, v: Variant, seed: int) -> Path:
    return Path(out) / "runs" / v.train_key / f"seed-{seed}"


def train_one(base: str, overrides: dict[str, Any], folder: str, seed: int) -> dict[str, Any]:
    """One run (resumed when it has checkpoints); writes and returns its ``done.json``."""
    folder_p = Path(folder)
    cfg = load_train_config(base, **overrides, output_dir=folder, seed=seed, name="lora")
    ckpts = folder_p / "checkpoints"
    resume = "latest" if ckpts.is_dir() and any(ckpts.iterdir()) else None
    res = train(cfg, resume=resume)
    done = {"lora": res["outputs"]["lora_diffusers"], "seed": seed, "overrides": overrides,
            "step": res["step"],
            "perceptual_network": res.get("perceptual_network")}
    atomic_write_json(folder_p / DONE, done)
    return done


def train_share(jobs_json: str, report: Any = None) -> int:
    """A worker's share of the pending runs, one after another."""
    jobs = json.loads(jobs_json)
    for job in jobs:
        train_one(*job)
        if report is not None:
            report(1)
    return len(jobs)


def train_all(base: Path, variants: list[Variant], seeds: list[int], out: Path, workers: int,
              progress: bool = True) -> dict[tuple[str, int], dict[str, Any]]:
    """Train what is missing (seed by seed); return every run's ``done.json`` by (key, seed)."""
    todo: dict[tuple[str, int], tuple[Variant, Path]] = {}
    for s in seeds:
        for v in variants:
            todo.setdefault((v.train_key, s), (v, run_dir(out, v, s)))
    pending = [[str(base), v.train, str(d), s] for (_, s), (v, d) in todo.items()
               if not (d / DONE).is_file()]
    if pending:
        k = max(1, min(workers, len(pending)))
        shares = [json.dumps(pending[i::k]) for i in range(k)]
        run_parallel(train_share, [(sh,) for sh in shares], total=len(pending),
                     desc="sweep: train", progress=progress)
    return {key: json.loads((d / DONE).read_text(encoding="utf-8"))
            for key, (_, d) in todo.items()}
