"""Adaptive train/val/test split by attribute-combination size (as in the porcelain study).

For a combination with n real images: n = 1 → train; n = 2 → one val, one test;
3 ≤ n < 10 → about 70/15/15 with at least one in val and one in test; n ≥ 10 → 70/20/10.
Synthetic images are always train. Images that already have a split keep it unless
``reset=True``; new images of a combination fill whatever that combination still lacks.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Any

from craftlora.catalog.store import ImageRecord
from craftlora.catalog.workspace import Workspace

SPLIT_ORDER = ("train", "val", "test")


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def split_targets(n: int) -> dict[str, int]:
    """How many of a combination's n real images go to train, val and test."""
    if n < 1:
        return {"train": 0, "val": 0, "test": 0}
    if n == 1:
        return {"train": 1, "val": 0, "test": 0}
    if n == 2:
        return {"train": 0, "val": 1, "test": 1}
    if n < 10:
        val = max(1, _round(0.15 * n))
        test = max(1, _round(0.15 * n))
    else:
        val = _round(0.20 * n)
        test = _round(0.10 * n)
    return {"train": n - val - test, "val": val, "test": test}


def size_rule(n: int) -> str:
    if n == 1:
        return "n=1"
    if n == 2:
        return "n=2"
    return "3<=n<10" if n < 10 else "n>=10"


def assign_splits(ws: Workspace, *, seed: int = 0, reset: bool = False) -> dict[str, Any]:
    """Give every image without a split one; return a summary. Deterministic for a seed."""
    cat = ws.catalog
    names = list(ws.config.attributes)
    records = cat.images()
    current = {r.id: (None if reset else r.split) for r in records}
    assignments: dict[int, str | None] = {}
    if reset:
        assignments.update({r.id: None for r in records if r.split is not None})

    for r in records:
        if r.origin == "synthetic" and current[r.id] != "train":
            assignments[r.id] = "train"

    groups: dict[tuple[str, ...], list[ImageRecord]] = defaultdict(list)
    for r in records:
        if r.origin == "real":
            groups[tuple(r.attributes.get(a, "") for a in names)].append(r)

    by_rule: dict[str, dict[str, int]] = defaultdict(lambda: {"groups": 0, "images": 0})
    short: list[dict[str, Any]] = []
    for key in sorted(groups):
        members = groups[key]
        n = len(members)
        target = split_targets(n)
        have = {s: sum(1 for m in members if current[m.id] == s) for s in SPLIT_ORDER}
        need = {s: max(target[s] - have[s], 0) for s in SPLIT_ORDER}
        new = sorted((m for m in members if current[m.id] is None), key=lambda m: m.sha256)
        random.Random(f"{seed}|{'|'.join(key)}").shuffle(new)
        for m in new:
            split = next((s for s in ("val", "test", "train") if need[s] > 0), "train")
            need[split] = max(need[split] - 1, 0)
            assignments[m.id] = split
            have[split] += 1
        if have != target:
            short.append({"values": dict(zip(names, key, strict=True)), "n": n,
                          "target": target, "actual": have})
        rule = by_rule[size_rule(n)]
        rule["groups"] += 1
        rule["images"] += n

    cat.set_splits(assignments)
    final = {s: 0 for s in SPLIT_ORDER}
    for r in cat.images():
        if r.split:
            final[r.split] += 1
    newly = sum(1 for i, s in assignments.items() if s is not None and current.get(i) != s)
    return {
        "seed": seed,
        "reset": reset,
        "assigned": newly,
        "counts": final,
        "combinations": len(groups),
        "by_size": dict(by_rule),
        "synthetic_train": sum(1 for r in records if r.origin == "synthetic"),
        # combinations whose kept assignments no longer match the rule for their size
        "off_target": short,
    }
