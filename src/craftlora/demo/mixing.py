"""The demo's mixing experiment: real-only vs real + syn-5 / syn-10 / oracle-10 × seeds.

The configurations are split over two processes (each writes its runs under its own folder);
then every finished run is gathered into ``OUT/experiment`` and the experiment runner, which
skips runs whose result exists, writes the summary, ``results.json`` and ``report.html``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from craftlora.classify.config import TrainConfig
from craftlora.demo.settings import DemoSettings
from craftlora.experiment.config import ExperimentConfig, MixConfig


def _mix(name: str, set_name: str, share: float, ws_dir: Path, notes: list[str]) -> MixConfig:
    """A mix at ``share``, or — when QC left too few images — all that passed (noted)."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.classify.mixing import real_splits, synthetic_count, synthetic_pool

    with Workspace.open(ws_dir) as ws:
        pool, _ = synthetic_pool(ws.catalog, set_name)
        need = synthetic_count(len(real_splits(ws.catalog).train), share, None)
    if len(pool) >= need:
        return MixConfig(name=name, synthetic=set_name, ratio=share)
    notes.append(f"{name}: only {len(pool)} images of set {set_name!r} passed QC, fewer than "
                 f"the {need} that make {share:.0%}; all {len(pool)} are used")
    return MixConfig(name=name, synthetic=set_name, count=len(pool))


def classifier_config(s: DemoSettings) -> TrainConfig:
    """The experiment's classifier settings (``examples/mini-oracle.toml`` uses the same)."""
    c = s.classifier
    return TrainConfig(backbone=c.backbone, pretrained="auto", image_size=s.size,
                       epochs=c.epochs, patience=c.patience, backbone_lr=c.backbone_lr,
                       head_lr=c.head_lr, batch_size=c.batch_size, sampler_task=c.sampler_task,
                       task_weights=c.task_weights, augment=c.augment)


def experiment_config(ws_dir: Path, s: DemoSettings, notes: list[str] | None = None
                      ) -> ExperimentConfig:
    train = classifier_config(s)
    lo, hi = (int(round(r * 100)) for r in s.shares)
    notes = [] if notes is None else notes
    configs = [
        MixConfig(name="real-only"),
        _mix(f"real+syn-{lo}", "minimal", s.shares[0], ws_dir, notes),
        _mix(f"real+syn-{hi}", "comprehensive", s.shares[1], ws_dir, notes),
        _mix(f"real+oracle-{hi}", "oracle", s.shares[1], ws_dir, notes),
    ]
    return ExperimentConfig(workspace=str(Path(ws_dir).resolve()), seeds=s.seeds, train=train,
                            configs=configs, bootstrap=s.bootstrap)


def _run_part(cfg_json: str, out: str, report: Any = None) -> dict[str, Any]:
    from craftlora.experiment.config import ExperimentConfig
    from craftlora.experiment.runner import run_experiment

    cfg = ExperimentConfig.model_validate_json(cfg_json)
    res = run_experiment(cfg, Path(out), Path(out), progress=False)
    return {"runs_trained_now": res["runs_trained_now"], "wall_s": res["wall_s"]}


def _count_done(folders: list[Path]) -> int:
    return sum(len(list(f.glob("runs/*/seed-*/result.json"))) for f in folders)


def run_mixing(out: Path, ws_dir: Path, s: DemoSettings, progress: bool) -> dict[str, Any]:
    from craftlora.experiment.runner import run_experiment
    from craftlora.runtime.workers import run_parallel

    notes: list[str] = []
    cfg = experiment_config(ws_dir, s, notes)
    final = Path(out) / "experiment"
    final.mkdir(parents=True, exist_ok=True)
    k = max(1, min(s.workers, len(cfg.configs)))
    groups = [cfg.configs[i::k] for i in range(k)]
    parts = [Path(out) / "experiment-parts" / f"part-{i}" for i in range(k)]
    for folder, group in zip(parts, groups, strict=True):  # earlier finished runs carry over
        for mc in group:
            src = final / "runs" / mc.name
            if src.is_dir() and not (folder / "runs" / mc.name).exists():
                shutil.copytree(src, folder / "runs" / mc.name)
    args = [(cfg.model_copy(update={"configs": g, "baseline": None}).model_dump_json(),
             str(p)) for g, p in zip(groups, parts, strict=True)]
    total = len(cfg.configs) * len(cfg.seeds)
    run_parallel(_run_part, args, total=total, desc="experiment runs", progress=progress,
                 poll=lambda: _count_done(parts))
    for folder in parts:
        for run in folder.glob("runs/*/seed-*/result.json"):
            dest = final / run.relative_to(folder)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run, dest)
    import tomli_w

    (final / "experiment.toml").write_text(
        "# the demo's experiment; rerun with `craftlora experiment run` on this file\n"
        + tomli_w.dumps(cfg.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    results = run_experiment(cfg, final, final, progress=progress)
    shutil.rmtree(Path(out) / "experiment-parts", ignore_errors=True)
    return {**results, "demo_notes": notes}
