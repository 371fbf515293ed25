"""Human review of synthetic images: decisions, their summaries, Cohen's κ, CSV export.

A decision is a row of the catalog's ``reviews`` table. Its ``note`` holds the reason of a
rejection as ``reason`` or ``reason: free text`` (reasons come from ``[review] reasons`` in
craftlora.toml). An image's status is its newest decision; agreement compares, for every pair
of reviewers, each one's newest decision on the images both reviewed.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from craftlora.catalog.store import Catalog
from craftlora.data.atomic import atomic_write_bytes

CSV_COLUMNS = ("review_id", "image_id", "set", "path", "combination", "decision", "reason",
               "text", "reviewer", "created_at")


@dataclass(frozen=True)
class Decision:
    review_id: int
    image_id: int
    set_name: str
    path: str
    combination: str
    decision: str
    reason: str
    text: str
    reviewer: str
    created_at: str


def note_of(reason: str, text: str = "") -> str:
    """The ``note`` stored for a decision: the reason, then any free text."""
    reason, text = reason.strip(), " ".join(text.split())
    return f"{reason}: {text}" if reason and text else reason or text


def split_note(note: str) -> tuple[str, str]:
    reason, sep, text = note.partition(": ")
    return (reason, text) if sep else (note, "")


def combination(attributes: dict[str, str]) -> str:
    """``glaze=white, type=bowl``: the attribute combination an image stands for."""
    return ", ".join(f"{k}={v}" for k, v in sorted(attributes.items()))


def decisions(catalog: Catalog, set_name: str | None = None) -> list[Decision]:
    """Every review decision (oldest first), optionally of one set."""
    sql = ("SELECT r.id, r.image_id, i.set_name, i.path, r.decision, r.reviewer, r.note,"
           " r.created_at FROM reviews r JOIN images i ON i.id = r.image_id")
    params: list[Any] = []
    if set_name is not None:
        sql += " WHERE i.set_name = ?"
        params.append(set_name)
    rows = catalog.execute(sql + " ORDER BY r.id", params)
    attrs = {r.id: r.attributes for r in catalog.images(ids={int(r[1]) for r in rows})}
    out = []
    for rid, image_id, set_, path, decision, reviewer, note, created in rows:
        reason, text = split_note(note)
        out.append(Decision(int(rid), int(image_id), set_, path,
                            combination(attrs.get(int(image_id), {})), decision, reason, text,
                            reviewer, created))
    return out


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's κ of two raters' labels on the same items; None when undefined (no items, or
    chance agreement is 1 because both gave one and the same label throughout)."""
    if len(a) != len(b):
        raise ValueError("cohen_kappa: the two raters must label the same items")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca.keys() | cb.keys()) / (n * n)
    if expected == 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def _rates(decided: dict[int, Decision], key) -> dict[str, dict[str, Any]]:
    groups: dict[str, Counter] = {}
    for d in decided.values():
        groups.setdefault(key(d), Counter())[d.decision] += 1
    return {k: {"reviewed": c["accept"] + c["reject"], "accepted": c["accept"],
                "rejected": c["reject"], "pass_rate": c["accept"] / (c["accept"] + c["reject"])}
            for k, c in sorted(groups.items())}


def agreement(items: list[Decision]) -> list[dict[str, Any]]:
    """Cohen's κ for every pair of reviewers over the images both reviewed."""
    newest: dict[str, dict[int, str]] = {}
    for d in items:  # oldest first: the newest decision of a reviewer wins
        newest.setdefault(d.reviewer, {})[d.image_id] = d.decision
    pairs = []
    for r1, r2 in itertools.combinations(sorted(newest), 2):
        shared = sorted(newest[r1].keys() & newest[r2].keys())
        if not shared:
            continue
        a = [newest[r1][i] for i in shared]
        b = [newest[r2][i] for i in shared]
        pairs.append({"reviewers": [r1, r2], "images": len(shared),
                      "agreement": sum(x == y for x, y in zip(a, b, strict=True)) / len(a),
                      "kappa": cohen_kappa(a, b)})
    return pairs


def summary(catalog: Catalog, set_name: str | None = None) -> dict[str, Any]:
    """Counts and pass rate per set and per combination, reasons, and agreement."""
    items = decisions(catalog, set_name)
    status: dict[int, Decision] = {}
    for d in items:
        status[d.image_id] = d  # newest decision per image
    synthetic = {s: 0 for s in ([set_name] if set_name else [])}
    for r in catalog.execute("SELECT set_name, count(*) FROM images WHERE origin = 'synthetic'"
                             " GROUP BY set_name"):
        if set_name is None or r[0] == set_name:
            synthetic[r[0]] = int(r[1])
    sets = _rates(status, lambda d: d.set_name)
    for s, n in synthetic.items():
        sets.setdefault(s, {"reviewed": 0, "accepted": 0, "rejected": 0, "pass_rate": None})
        sets[s]["images"] = n
    accepted = sum(d.decision == "accept" for d in status.values())
    return {
        "set": set_name,
        "decisions": len(items),
        "reviewed": len(status),
        "accepted": accepted,
        "rejected": len(status) - accepted,
        "pass_rate": accepted / len(status) if status else None,
        "reviewers": sorted({d.reviewer for d in items}),
        "sets": sets,
        "combinations": _rates(status, lambda d: f"{d.set_name}: {d.combination}"),
        "reasons": dict(Counter(d.reason for d in status.values() if d.decision == "reject")),
        "agreement": agreement(items),
    }


def write_csv(catalog: Catalog, path: str | Path, set_name: str | None = None) -> int:
    """Every decision as one CSV row (written atomically); returns the number of rows."""
    items = decisions(catalog, set_name)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for d in items:
        w.writerow([d.review_id, d.image_id, d.set_name, d.path, d.combination, d.decision,
                    d.reason, d.text, d.reviewer, d.created_at])
    atomic_write_bytes(Path(path), buf.getvalue().encode("utf-8"))
    return len(items)


def accepted_ids(catalog: Catalog) -> set[int]:
    """Images whose newest decision is ``accept`` (what ``require_review`` mixes in)."""
    return {i for i, d in catalog.latest_reviews().items() if d == "accept"}
