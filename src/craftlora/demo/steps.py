"""The demo's steps: a runner that skips finished steps, and the data / judge / LoRA steps.

Each step writes ``OUT/steps/<name>.json`` (its result and wall time) when it finishes; a
rerun reads that file instead of running the step again, so a killed demo resumes at the
first unfinished step. Steps that are long are themselves resumable (renders are
deterministic, ingest is idempotent, LoRA training resumes from its last checkpoint).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from craftlora.data.atomic import atomic_write_json
from craftlora.demo.settings import DEMO_CAPTION_TEMPLATE, DemoSettings

LORA_NAME = "minikiln"


class StepRunner:
    """Runs named steps once; records each one's wall time."""

    def __init__(self, out: Path, console: Console):
        self.dir = Path(out) / "steps"
        self.console = console
        self.walls: dict[str, float] = {}
        self.resumed: list[str] = []

    def run(self, name: str, title: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        path = self.dir / f"{name}.json"
        if path.is_file():
            rec = json.loads(path.read_text(encoding="utf-8"))
            self.walls[name] = float(rec["wall_s"])
            self.resumed.append(name)
            self.console.print(f"[dim]step {name}: done in an earlier run "
                               f"({rec['wall_s']:.0f} s) — skipped[/]")
            return rec["result"]
        self.console.rule(f"[bold]{title}[/]")
        t0 = time.perf_counter()
        result = fn()
        wall = time.perf_counter() - t0
        self.walls[name] = wall
        atomic_write_json(path, {"result": result, "wall_s": wall})
        self.console.print(f"[green]✓[/] {name} in {wall:.0f} s")
        return result


def workspace_dir(out: Path) -> Path:
    return Path(out) / "workspace"


def build_world(out: Path, s: DemoSettings, progress: bool = True) -> dict[str, Any]:
    """Render mini-kiln, catalog it in a workspace, split it, caption it, chart its tail."""
    from craftlora.catalog.captions import write_captions
    from craftlora.catalog.ingest import ingest
    from craftlora.catalog.split import assign_splits
    from craftlora.catalog.stats import workspace_stats, write_charts
    from craftlora.catalog.workspace import Workspace
    from craftlora.config import CONFIG_NAME
    from craftlora.mini.kiln import workspace_config
    from craftlora.mini.render import render_kiln

    ws_dir = workspace_dir(out)
    src = Path(out) / "render-tmp" / "mini-kiln"
    labels = render_kiln(src, n=s.n_real, seed=s.world_seed, size=s.size, workers=s.workers,
                         progress=progress)
    if (ws_dir / CONFIG_NAME).is_file():
        ws = Workspace.open(ws_dir)
    else:
        cfg = workspace_config("mini-kiln-demo")
        cfg = cfg.model_copy(update={
            "caption_template": DEMO_CAPTION_TEMPLATE,
            "qc": cfg.qc.model_copy(update={"expected_size": (s.size, s.size),
                                            "min_agreement": s.qc_min_agreement,
                                            "sharpness_reference": "decoder"}),
        })
        ws = Workspace.create(ws_dir, cfg)
    with ws:
        rep = ingest(ws, src, labels=labels, progress=progress)
        split = assign_splits(ws, seed=s.world_seed)
        caps = write_captions(ws)
        st = workspace_stats(ws)
        charts = write_charts(st, Path(out) / "stats")
    shutil.rmtree(src.parent, ignore_errors=True)
    return {
        "workspace": str(ws_dir), "images": rep.ingested + rep.already_present,
        "rejected": len(rep.rejected), "split": split["counts"],
        "combinations": st["observed_combinations"], "imbalance_ratio": st["imbalance_ratio"],
        "gini": st["gini"], "caption_template": DEMO_CAPTION_TEMPLATE,
        "caption_example": caps.get("example"), "charts": charts,
    }


def train_judge_step(out: str, s_json: str, report: Any = None) -> dict[str, Any]:
    """Train the judge on fresh balanced renders (runs in its own process)."""
    from craftlora.mini.judge import judge_train_config, train_judge
    from craftlora.models.loader import load_components

    s = DemoSettings.model_validate_json(s_json)
    vae = load_components(s.model).vae
    j = s.judge
    cfg = judge_train_config(j.epochs, s.size)
    path = Path(out) / "judge" / "judge.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    rep = train_judge(path, n_per_combo=j.n_per_combo, n_val_per_combo=j.n_val_per_combo,
                      n_test_per_combo=j.n_test_per_combo, seed=1234, size=s.size, config=cfg,
                      progress=False, decoder=vae)
    from craftlora.mini.recalibrate import recalibrate

    rep["heldout_before_recalibration"] = rep["heldout"]
    rep["heldout"] = recalibrate(path, per_combo=j.recalibrate_per_combo,
                                 heldout_per_combo=j.heldout_per_combo, decoder=vae)
    rep["source"] = "trained in this run (BatchNorm statistics recalibrated)"
    atomic_write_json(path.with_suffix(".json"), rep)
    return rep


def use_shipped_judge(shipped: Path, target: Path) -> dict[str, Any]:
    """Copy the shipped judge into the run; its report says how it was built."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped, target)
    rep = json.loads(shipped.with_suffix(".json").read_text(encoding="utf-8"))
    rep["source"] = f"shipped: {shipped.name}, built by `{rep.get('recipe', '?')}`"
    rep["checkpoint"] = str(target)
    return rep


def lora_config(out: Path, s: DemoSettings) -> Any:
    """The LoRA run's config (also written to ``OUT/lora/train.toml``)."""
    from craftlora.train.config import (
        DataSettings,
        LoraSettings,
        OptimSettings,
        TrainConfig,
        ValidationSettings,
    )

    lp = s.lora
    return TrainConfig(
        name=LORA_NAME, mode="lora", model=s.model, output_dir=Path(out) / "lora", seed=0,
        max_steps=lp.steps, batch_size=lp.batch_size,
        checkpoint_every=max(1, lp.steps // 4), keep_last=1, log_every=10,
        lora=LoraSettings(rank=lp.rank, alpha=lp.alpha, target_modules=lp.targets,
                          text_encoder=lp.text_encoder),
        data=DataSettings(workspace=workspace_dir(out).resolve(), resolution=s.size,
                          split="train", origin="real",
                          clip_skip=max(0, s.generation.clip_skip - 1)),
        optim=OptimSettings(lr=lp.lr, scheduler="cosine", warmup_steps=min(50, lp.steps // 10),
                            weight_decay=0.0),
        validation=ValidationSettings(),
    )


def train_lora(out: Path, s: DemoSettings, progress: bool = True) -> dict[str, Any]:
    """Train the LoRA on the real train split; resumes from its last checkpoint.

    With ``s.workers`` > 1 it runs as that many CPU processes (``train_on_cpus``).
    """
    from craftlora.train.launch import last_loss, train_on_cpus

    res = train_on_cpus(lora_config(out, s), s.workers, progress)
    run_dir = Path(res["output_dir"])
    loras = Path(out) / "loras"
    loras.mkdir(parents=True, exist_ok=True)
    target = loras / f"{LORA_NAME}.safetensors"
    shutil.copyfile(res["outputs"]["lora_diffusers"], target)
    from craftlora.data.imageio import sha256_file

    return {
        "lora": str(target), "lora_sha256": sha256_file(target),
        "kohya": res["outputs"]["lora_kohya"], "steps": res["step"],
        "train_images": res["n_images"], "rank": s.lora.rank, "alpha": s.lora.alpha,
        "targets": s.lora.targets, "text_encoder": s.lora.text_encoder, "lr": s.lora.lr,
        "batch_size": s.lora.batch_size, "processes": res.get("processes", 1),
        "steps_per_s": res["timings"]["steps_per_s"],
        "final_loss": last_loss(run_dir / "log.jsonl"),
        "base_model": s.model, "config": res["config"],
    }
