"""Run benchmarks: ``python -m bench`` lists them, ``python -m bench NAME [NAME ...]`` runs them.

Each one runs in its own process (``python -m bench.NAME``) so its timings and peak memory are
its own; each prints JSON and writes ``bench-out/NAME.json``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def available() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))


def main(argv: list[str]) -> int:
    names = available()
    if not argv:
        print("benchmarks:", " ".join(names))
        print("run one: python -m bench NAME   (or all: python -m bench all)")
        return 0
    chosen = names if argv == ["all"] else argv
    unknown = [n for n in chosen if n not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}")
        return 2
    failed = [n for n in chosen
              if subprocess.call([sys.executable, "-m", f"bench.{n}"], cwd=HERE.parent) != 0]
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
