"""Oracle and negative-control synthetic sets for the mini world.

The **oracle** is the ideal generator: fresh true renders from the mini-kiln renderer, ingested
as origin ``synthetic``. Its combinations are drawn towards the rare end, like a generation
plan: combination c gets a share ∝ 1/√(n_c + 1), n_c = its count among the real training
images (every valid combination is eligible). The **negative control** ("wrong") is rendered the
same way with another seed and the same rarity plan, then every label is shifted by one place
in its value list (Song → Yuan, Ding → Jun, white → ivory white, bowl → tea bowl, ...), so each
image is wrong on every task; the two sets differ only in the truth of their labels.
"""

from __future__ import annotations

import csv
import math
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from craftlora.catalog.ingest import ingest
from craftlora.catalog.workspace import Workspace
from craftlora.mini.kiln import ATTRIBUTES, valid_combinations
from craftlora.mini.render import render_kiln

WRONG_TASKS: tuple[str, ...] = tuple(ATTRIBUTES)


def allocate(weights: Sequence[float], total: int) -> list[int]:
    """Integer counts summing to ``total`` proportional to ``weights`` (largest remainder)."""
    w = np.asarray(weights, dtype=np.float64)
    share = w / w.sum() * total
    counts = np.floor(share).astype(int)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts.tolist()


def rarity_plan(ws: Workspace, total: int) -> list[tuple[dict[str, str], int]]:
    """(combination, count) pairs ∝ 1/√(n_train + 1) over every valid combination."""
    names = list(ATTRIBUTES)
    seen = Counter(
        tuple(r.attributes.get(a, "") for a in names)
        for r in ws.catalog.images(split="train", origin="real")
    )
    combos = valid_combinations()
    weights = [1.0 / math.sqrt(seen[tuple(c[a] for a in names)] + 1.0) for c in combos]
    return [(c, k) for c, k in zip(combos, allocate(weights, total), strict=True) if k > 0]


def shifted(values: Sequence[str]) -> dict[str, str]:
    """Each value → the next one in the list (a derangement: no label stays right)."""
    return {v: values[(i + 1) % len(values)] for i, v in enumerate(values)}


def relabel(labels_csv: Path, mapping: Mapping[str, Mapping[str, str]]) -> None:
    """Rewrite a mini-kiln labels.csv in place with ``mapping[column][value]`` substitutions."""
    with open(labels_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0].keys()) if rows else ["file", *ATTRIBUTES]
    with open(labels_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for row in rows:
            for col, m in mapping.items():
                row[col] = m.get(row[col], row[col])
            w.writerow(row)


def add_render_set(
    ws: Workspace,
    set_name: str,
    n: int,
    *,
    seed: int,
    size: int = 64,
    wrong: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Render ``n`` oracle images (or wrong-label ones) into the catalog as set ``set_name``.

    Idempotent: a set that already holds ``n`` images is left as it is.
    """
    have = ws.catalog.count(set_name=set_name)
    if have >= n:
        return {"set": set_name, "images": have, "rendered": 0, "note": "already present"}
    if have and ws.catalog.count(set_name=set_name, origin="real"):
        raise ValueError(f"set {set_name!r} holds real images; choose another set name")
    plan = rarity_plan(ws, n)
    render_seed = seed + (1_000_003 if wrong else 0)
    with tempfile.TemporaryDirectory(prefix=f"craftlora-{set_name}-") as tmp:
        src = Path(tmp) / set_name
        labels = render_kiln(src, seed=render_seed, size=size, combos=plan,
                             progress=progress)
        if wrong:
            relabel(labels, {t: shifted(ATTRIBUTES[t]) for t in WRONG_TASKS})
        provenance = {
            "generator": "mini-kiln renderer" + (" (labels shifted: negative control)"
                                                 if wrong else " (oracle: true renders)"),
            "render_seed": render_seed,
            "plan": "1/sqrt(n_train + 1) over valid combinations",
        }
        if wrong:
            provenance["wrong_labels"] = list(WRONG_TASKS)
        report = ingest(ws, src, labels=labels, origin="synthetic", set_name=set_name,
                        provenance=provenance, progress=progress)
    return {"set": set_name, "images": ws.catalog.count(set_name=set_name),
            "rendered": sum(k for _, k in plan),
            "ingested": getattr(report, "ingested", None), "wrong_labels": wrong}
