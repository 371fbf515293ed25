"""Build the judge the demo ships (the recipe behind ``craftlora/demo/assets/judge-64``).

The judge is a measuring instrument, like Inception for FID: a multi-task classifier trained
on a large balanced set of fresh mini-kiln renders (every valid combination) and scored on
renders it never saw (``craftlora.classify.judge.train_judge``). Shipping it saves the demo
minutes of rendering and training; the demo still measures its ceiling on fresh renders of the
Table 6 combinations every run.

``python -m craftlora.demo.build_judge [--out DIR] [--per-combo N] [--epochs E]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
JUDGE_NAME = "judge-64"
JUDGE_SEED = 1234


def shipped_judge(size: int) -> Path | None:
    """The shipped judge for ``size`` px images, if present (with its report beside it)."""
    path = ASSETS / f"judge-{size}.safetensors"
    return path if path.is_file() and path.with_suffix(".json").is_file() else None


def main(argv: list[str] | None = None) -> None:
    from craftlora.classify.judge import train_judge
    from craftlora.demo.parallel import one_thread
    from craftlora.demo.steps import judge_train_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ASSETS)
    ap.add_argument("--per-combo", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=18)
    ap.add_argument("--patience", type=int, default=5)
    a = ap.parse_args(argv)
    one_thread()
    cfg = judge_train_config(a.epochs, 64).model_copy(update={"patience": a.patience})
    path = a.out / f"{JUDGE_NAME}.safetensors"
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rep = train_judge(path, n_per_combo=a.per_combo, n_val_per_combo=3, n_test_per_combo=6,
                      seed=JUDGE_SEED, size=64, config=cfg, progress=True)
    rep["checkpoint"] = path.name
    rep["recipe"] = (f"python -m craftlora.demo.build_judge --per-combo {a.per_combo} "
                     f"--epochs {a.epochs} --patience {a.patience}")
    rep["build_wall_s"] = time.perf_counter() - t0
    path.with_suffix(".json").write_text(json.dumps(rep, indent=2), encoding="utf-8")
    print(json.dumps(rep["heldout"], indent=2))


if __name__ == "__main__":
    main()
