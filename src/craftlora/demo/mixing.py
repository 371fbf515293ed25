"""The demo's mixing experiment: real-only vs real + syn-5 / syn-10 / oracle-10 × seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from craftlora.demo.settings import DemoSettings
from craftlora.experiment.config import ExperimentConfig, MixConfig
from craftlora.experiment.runner import run_experiment


def experiment_config(ws_dir: Path, s: DemoSettings) -> ExperimentConfig:
    """real-only and three mixes; a mix QC left short uses all that passed."""
    train = s.classifier.model_copy(update={"image_size": s.size})
    lo, hi = (int(round(r * 100)) for r in s.shares)
    configs = [MixConfig(name="real-only")] + [
        MixConfig(name=name, synthetic=set_name, ratio=share, when_short="all_passed")
        for name, set_name, share in ((f"real+syn-{lo}", "minimal", s.shares[0]),
                                      (f"real+syn-{hi}", "comprehensive", s.shares[1]),
                                      (f"real+oracle-{hi}", "oracle", s.shares[1]))]
    return ExperimentConfig(workspace=str(Path(ws_dir).resolve()), seeds=s.seeds, train=train,
                            configs=configs, bootstrap=s.bootstrap)


def run_mixing(out: Path, ws_dir: Path, s: DemoSettings, progress: bool) -> dict[str, Any]:
    """The experiment in ``OUT/experiment`` (runs in ``s.workers`` processes; resumable)."""
    cfg = experiment_config(ws_dir, s).model_copy(update={"workers": s.workers})
    final = Path(out) / "experiment"
    final.mkdir(parents=True, exist_ok=True)
    (final / "experiment.toml").write_text(
        "# the demo's experiment; rerun with `craftlora experiment run` on this file\n"
        + tomli_w.dumps(cfg.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    return run_experiment(cfg, final, final, progress=progress)
