"""The judge a run uses: trained here on fresh renders and recalibrated, or the shipped one;
and its report in words."""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from craftlora.data.atomic import atomic_write_json
from craftlora.mini.judge import judge_train_config, train_judge
from craftlora.mini.recalibrate import recalibrate
from craftlora.models.loader import load_components


def train_run_judge(path: Path, model: str, size: int, *, epochs: int, n_per_combo: int,
                    n_val_per_combo: int, n_test_per_combo: int, recalibrate_per_combo: int,
                    heldout_per_combo: int, seed: int = 1234) -> dict[str, Any]:
    """Train the judge on fresh balanced renders (half through ``model``'s VAE), recalibrate
    its BatchNorm statistics, and write its report next to it."""
    vae = load_components(model).vae
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rep = train_judge(path, n_per_combo=n_per_combo, n_val_per_combo=n_val_per_combo,
                      n_test_per_combo=n_test_per_combo, seed=seed, size=size,
                      config=judge_train_config(epochs, size), progress=False, decoder=vae)
    rep["heldout_before_recalibration"] = rep["heldout"]
    rep["heldout"] = recalibrate(path, per_combo=recalibrate_per_combo,
                                 heldout_per_combo=heldout_per_combo, decoder=vae)
    rep["source"] = "trained in this run (BatchNorm statistics recalibrated)"
    atomic_write_json(path.with_suffix(".json"), rep)
    return rep


def use_shipped_judge(shipped: Path, target: Path) -> dict[str, Any]:
    """Copy the shipped judge to ``target``; its report says how it was built."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped, target)
    rep = json.loads(shipped.with_suffix(".json").read_text(encoding="utf-8"))
    rep["source"] = f"shipped: {shipped.name}, built by `{rep.get('recipe', '?')}`"
    rep["checkpoint"] = str(target)
    return rep


def judge_html(judge: Mapping[str, Any]) -> str:
    """Where the judge came from and how well it reads fresh true renders."""
    h, esc = judge["heldout"], html.escape
    acc = ", ".join(f"{t} {v:.3f}" for t, v in h["task_accuracy"].items())
    return (f"<p>Judge: {esc(judge.get('source', 'trained in this run'))} — "
            f"<code>{esc(judge['backbone'])}</code> trained on {judge['train_images']} fresh "
            f"renders; on {h.get('images', judge['heldout_images'])} held-out renders: "
            f"{esc(acc)}; glaze + type {h['glaze_type_accuracy']:.3f}, "
            f"exact {h['combo_accuracy']:.3f}{_decoded(judge)}.</p>")


def _decoded(judge: Mapping[str, Any]) -> str:
    d = judge.get("heldout_decoded")
    if not d:
        return ""
    return (f"; half its training renders went through the base's VAE, and on the held-out "
            f"renders' VAE round trips it reads glaze + type {d['glaze_type_accuracy']:.3f}, "
            f"exact {d['combo_accuracy']:.3f}")
