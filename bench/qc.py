"""Automatic QC throughput: 2,500 generated 64×64 images against a decode-only loop, same run.

    .venv/bin/python -m bench.qc [--n 2500] [--real 1000] [--judge CKPT] [--out bench-out]

Setup (not timed): a fresh workspace with ``--real`` mini-kiln renders as the real set and
``--n`` fresh renders (another seed) as a synthetic set, plus a few crafted bad images so every
failure path runs. Timed: (1) baseline — decoding every synthetic image with the project's safe
loader and nothing else, the floor any QC pays; (2) the first full QC run (reference statistics,
every check, catalog writes); (3) a rerun, which must find nothing new. The target is the first
run under 60 s on this machine. Prints one JSON document and writes OUT/qc.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from craftlora.catalog.ingest import ingest
from craftlora.catalog.workspace import Workspace
from craftlora.data.imageio import load_rgb, sha256_file
from craftlora.mini.kiln import workspace_config
from craftlora.mini.render import render_kiln
from craftlora.qc import passed_ids, run_qc

TARGET_S = 60.0


def _setup(root: Path, n: int, n_real: int) -> Workspace:
    ws = Workspace.create(root / "ws", workspace_config())
    real = render_kiln(root / "real", n=n_real, seed=0, workers=1)
    syn = render_kiln(root / "syn", n=n, seed=1, workers=1)
    ingest(ws, real.parent, labels=real, progress=False, workers=1)
    ingest(ws, syn.parent, labels=syn, origin="synthetic", set_name="syn", progress=False,
           workers=1)
    bad = {"flat.png": np.full((64, 64, 3), 128, np.uint8),
           "black.png": np.zeros((64, 64, 3), np.uint8)}
    for name, arr in bad.items():
        p = ws.root / "bad" / name
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(arr).save(p)
        ws.catalog.add_image(sha256=sha256_file(p), path=f"bad/{name}", width=64, height=64,
                             origin="synthetic", set_name="syn")
    return ws


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2500)
    ap.add_argument("--real", type=int, default=1000)
    ap.add_argument("--judge", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ws = _setup(Path(tmp), args.n - 2, args.real)
        setup_s = time.perf_counter() - t
        recs = ws.catalog.images(set_name="syn")

        t = time.perf_counter()
        for r in recs:
            np.asarray(load_rgb(ws.resolve(r.path)))
        decode_s = time.perf_counter() - t

        t = time.perf_counter()
        first = run_qc(ws, "syn", judge=args.judge)
        first_s = time.perf_counter() - t

        t = time.perf_counter()
        again = run_qc(ws, "syn", judge=args.judge)
        rerun_s = time.perf_counter() - t
        n_passed = len(passed_ids(ws.catalog, "syn"))
        ws.close()

    result = {
        "bench": "qc",
        "images": len(recs),
        "real_reference": args.real,
        "judge": str(args.judge) if args.judge else None,
        "setup_s": round(setup_s, 2),
        "baseline_decode_only_s": round(decode_s, 3),
        "qc_first_run_s": round(first_s, 3),
        "qc_images_per_s": round(len(recs) / first_s, 1),
        "qc_vs_decode_only": round(first_s / decode_s, 2),
        "qc_rerun_s": round(rerun_s, 3),
        "rerun_checked_now": again["checked_now"],
        "pass_rate": first["pass_rate"],
        "passed": n_passed,
        "failures_by_reason": first["failures_by_reason"],
        "target_s": TARGET_S,
        "meets_target": first_s < TARGET_S,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "qc.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
