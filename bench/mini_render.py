"""Bench: render the default mini-kiln set (6,000 images at 64×64) with 2 processes.

Baseline in the same run: the same render in one process. Prints JSON; the target is < 60 s.
Run: .venv/bin/python -m bench.mini_render [--n 6000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from craftlora.mini.render import render_kiln


def _timed(out: Path, n: int, workers: int) -> float:
    t = time.perf_counter()
    render_kiln(out, n=n, seed=0, size=64, workers=workers)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        par = _timed(Path(tmp) / "two", args.n, 2)
        base = _timed(Path(tmp) / "one", args.n, 1)
        same = all(
            (Path(tmp) / "two" / p.name).read_bytes() == p.read_bytes()
            for p in sorted((Path(tmp) / "one").iterdir())
        )
    print(json.dumps({
        "bench": "mini_render", "images": args.n, "size": 64,
        "two_processes_s": round(par, 2), "baseline_one_process_s": round(base, 2),
        "speedup": round(base / par, 2), "images_per_s": round(args.n / par, 1),
        "under_60s": par < 60.0, "outputs_identical": same,
    }, indent=2))


if __name__ == "__main__":
    main()
