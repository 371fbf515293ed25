"""``run_sweep``: train every run (resumable), evaluate each through ``craftlora compare``,
write ``sweep.json`` (figures only: an interrupted and resumed sweep writes the same bytes),
``timing.json``, ``sweep.html`` and the best variant's train config, ``best_train.toml``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import tomli_w

from craftlora.data.atomic import atomic_write_bytes, atomic_write_json
from craftlora.sweep.config import SweepConfig, load_sweep
from craftlora.sweep.evaluate import evaluate_all
from craftlora.sweep.expand import Variant, expand
from craftlora.sweep.html import write_page
from craftlora.sweep.summary import best_variant, summarise
from craftlora.sweep.train_runs import train_all
from craftlora.train.config import TrainConfig, load_train_config


def best_config(cfg: SweepConfig, v: Variant, out: Path) -> Path:
    """The base train config with ``v``'s training overrides, paths absolute, as TOML."""
    tc: TrainConfig = load_train_config(cfg.base, **v.train, output_dir=str(out / "best-run"))
    path = out / "best_train.toml"
    atomic_write_bytes(path, tomli_w.dumps(tc.model_dump(mode="json", exclude_none=True))
                       .encode("utf-8"))
    return path


def run_sweep(path: Path, out: Path, *, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the sweep file ``path`` into ``out``; return sweep.json's content."""
    t0 = time.perf_counter()
    cfg = load_sweep(path)
    variants = expand(cfg, path)
    base = load_train_config(cfg.base)  # the base itself must be valid before any run
    for v in variants:  # and every variant's values, before minutes of training
        load_train_config(cfg.base, **v.train)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = train_all(cfg.base, variants, cfg.seeds, out, cfg.workers, progress)
    t_train = time.perf_counter() - t0
    ev = cfg.evaluate
    res = evaluate_all(base.model, ev.workspace or base.data.workspace, variants, cfg.seeds,
                       {k: r["lora"] for k, r in runs.items()}, ev,
                       ev.size or base.data.resolution, out, cfg.workers, progress)
    summary = summarise(variants, res["figures"], cfg.seeds, cfg.bootstrap)
    best = best_variant(summary)
    perceptual = sorted({str(r["perceptual_network"]) for r in runs.values()
                         if r.get("perceptual_network")})
    body = {
        "name": cfg.name, "base": str(cfg.base), "model": base.model, "seeds": cfg.seeds,
        "baseline": variants[0].name, "feature_space": res["feature_space"],
        "lpips_network": res["lpips_network"], "perceptual_network": perceptual or None,
        "evaluate": ev.model_dump(mode="json"), "variants": summary,
        "per_seed": res["figures"], "best": best,
        "best_config": best_config(cfg, next(v for v in variants if v.name == best), out).name,
    }
    atomic_write_json(out / "sweep.json", body)
    atomic_write_json(out / "timing.json", {"train_s": t_train,
                                            "wall_s": time.perf_counter() - t0})
    write_page(out, body, res["folders"], ev.show)
    return body
