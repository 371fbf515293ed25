"""The kept set: candidates that passed QC and that no reviewer rejected (a reviewer's accept
keeps a QC failure), marked as the training split; everything else leaves it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from craftlora.catalog.workspace import Workspace
from craftlora.data.imageio import load_rgb
from craftlora.qc.runner import passed_ids

IDENTITY_REVIEWER = "identity-detectors"


def review_identity(ws: Workspace, sets: Sequence[str],
                    features: Callable[[np.ndarray], dict[str, bool]]) -> dict[str, int]:
    """Record an automatic rejection of every candidate missing an identity feature, naming
    the missing ones; the rest stay unreviewed (QC decides), and a human's later decision in
    `craftlora review` overrides either."""
    done = set(ws.catalog.latest_reviews())
    counts = {"accept": 0, "reject": 0}
    for s in sets:
        for rec in ws.catalog.images(set_name=s):
            if rec.id in done:
                continue
            got = features(np.asarray(load_rgb(ws.resolve(rec.path))))
            missing = [k for k, v in got.items() if not v]
            if missing:
                ws.catalog.add_review(rec.id, "reject", IDENTITY_REVIEWER,
                                      f"wrong attribute: missing {', '.join(missing)}")
            counts["reject" if missing else "accept"] += 1
    return counts


def select_kept(ws: Workspace, sets: Sequence[str]) -> dict[str, Any]:
    """Mark the kept candidates of ``sets`` as split train (the rest split none)."""
    latest = ws.catalog.latest_reviews()
    assign: dict[int, str | None] = {}
    kept = 0
    by_set = {}
    for s in sets:
        ok = passed_ids(ws.catalog, s)
        ids = [r.id for r in ws.catalog.images(set_name=s)]
        keep = [i for i in ids if latest.get(i) == "accept" or
                (i in ok and latest.get(i) != "reject")]
        assign.update({i: ("train" if i in keep else None) for i in ids})
        by_set[s] = {"candidates": len(ids), "qc_passed": len(ok), "kept": len(keep)}
        kept += len(keep)
    ws.catalog.set_splits(assign)
    return {"candidates": len(assign), "kept": kept, "sets": by_set}
