"""The demo's data, judge and LoRA steps (each resumable: renders are deterministic, ingest
is idempotent, LoRA training resumes from its last checkpoint)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from craftlora.demo.settings import DEMO_CAPTION_TEMPLATE, DemoSettings

LORA_NAME = "minikiln"


def workspace_dir(out: Path) -> Path:
    return Path(out) / "workspace"


def build_world(out: Path, s: DemoSettings, progress: bool = True) -> dict[str, Any]:
    """The mini-kiln workspace in ``OUT/workspace``, its charts in ``OUT/stats``."""
    from craftlora.mini.world import build_world as build

    return build(workspace_dir(out), Path(out) / "stats", n=s.n_real, seed=s.world_seed,
                 size=s.size, caption_template=DEMO_CAPTION_TEMPLATE,
                 min_agreement=s.qc_min_agreement, workers=s.workers, progress=progress)


def train_judge_step(out: str, s_json: str, report: Any = None) -> dict[str, Any]:
    """Train the judge into ``OUT/judge`` (runs in its own process)."""
    from craftlora.mini.judge_build import train_run_judge

    s = DemoSettings.model_validate_json(s_json)
    return train_run_judge(Path(out) / "judge" / "judge.safetensors", s.model, s.size,
                           **s.judge.model_dump(exclude={"use_shipped"}))


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
