"""Imbalance statistics over attribute combinations, and their two charts.

For K combination counts n_k with mean μ and total N (p_k = n_k / N):
imbalance ratio max n / min n; coefficient of variation σ/μ with the population σ;
Gini Σ_i Σ_j |n_i − n_j| / (2 K² μ); normalized entropy −Σ p_k ln p_k / ln K.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from craftlora.catalog.workspace import Workspace

UNLABELLED = "(missing)"


def combination_stats(counts: Mapping[tuple[str, ...], int]) -> dict[str, Any]:
    """The four imbalance figures of a set of combination counts (zero counts included).

    With no combinations every figure is None; with a zero count the imbalance ratio is inf;
    with a single combination the entropy is defined as 1 (nothing to be uneven about).
    """
    n = np.array([int(c) for c in counts.values()], dtype=np.float64)
    if (n < 0).any():
        raise ValueError("combination counts must be non-negative")
    k = len(n)
    total = float(n.sum())
    if k == 0 or total == 0:
        return {"k": k, "total": int(total), "imbalance_ratio": None, "cv": None,
                "gini": None, "normalized_entropy": None}
    mean = total / k
    ratio = math.inf if n.min() == 0 else float(n.max() / n.min())
    cv = float(n.std() / mean)  # numpy's default std is the population σ
    gini = float(np.abs(n[:, None] - n[None, :]).sum() / (2 * k * k * mean))
    if k == 1:
        entropy = 1.0
    else:
        p = n[n > 0] / total
        entropy = float(-(p * np.log(p)).sum() / math.log(k))
    return {"k": k, "total": int(total), "imbalance_ratio": ratio, "cv": cv, "gini": gini,
            "normalized_entropy": entropy}


def lorenz_curve(counts: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(population share, cumulative count share), both starting at 0, counts ascending."""
    n = np.sort(np.asarray(counts, dtype=np.float64))
    x = np.arange(len(n) + 1) / max(len(n), 1)
    y = np.concatenate([[0.0], np.cumsum(n) / max(n.sum(), 1e-300)])
    return x, y


def workspace_stats(
    ws: Workspace,
    by: list[str] | None = None,
    split: str | None = None,
    origin: str | None = "real",
) -> dict[str, Any]:
    """Counts per attribute value and per combination of ``by`` (default: every attribute).

    Images lacking one of the ``by`` attributes are counted under ``unlabelled`` and left out of
    the combinations. ``split='none'`` selects images without a split.
    """
    names = list(by) if by else list(ws.config.attributes)
    unknown = [a for a in names if a not in ws.config.attributes]
    if unknown:
        raise ValueError(
            f"unknown attribute(s) {unknown}; the workspace has {list(ws.config.attributes)}"
        )
    records = ws.catalog.images(origin=origin, split=split)
    per_value: dict[str, Counter[str]] = {a: Counter() for a in names}
    combos: Counter[tuple[str, ...]] = Counter()
    unlabelled = 0
    for rec in records:
        for a in names:
            per_value[a][rec.attributes.get(a, UNLABELLED)] += 1
        if all(a in rec.attributes for a in names):
            combos[tuple(rec.attributes[a] for a in names)] += 1
        else:
            unlabelled += 1
    attributes = {}
    for a in names:
        allowed = ws.config.attributes[a].values
        counts = {v: per_value[a].get(v, 0) for v in allowed}
        counts.update({v: c for v, c in per_value[a].items() if v not in counts})
        attributes[a] = counts
    ordered = sorted(combos.items(), key=lambda kv: (-kv[1], kv[0]))
    possible = math.prod(len(ws.config.attributes[a].values) for a in names) if names else 0
    figures = combination_stats(dict(combos))
    return {
        "by": names,
        "split": split,
        "origin": origin,
        "images": len(records),
        "unlabelled": unlabelled,
        "attributes": attributes,
        "combinations": [{"values": dict(zip(names, key, strict=True)), "count": c}
                         for key, c in ordered],
        "observed_combinations": len(combos),
        "possible_combinations": possible,
        "imbalance_ratio": figures["imbalance_ratio"],
        "cv": figures["cv"],
        "gini": figures["gini"],
        "normalized_entropy": figures["normalized_entropy"],
    }


def write_charts(stats: Mapping[str, Any], out_dir: str | Path) -> dict[str, str]:
    """A long-tail bar chart and a Lorenz curve of the combination counts, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from craftlora.data.atomic import atomic_write_bytes

    out_dir = Path(out_dir)
    counts = [c["count"] for c in stats["combinations"]]
    label = " × ".join(stats["by"]) or "combination"
    paths = {"long_tail": out_dir / "long_tail.png", "lorenz": out_dir / "lorenz.png"}

    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    ax.bar(range(len(counts)), counts, width=1.0, color="#4c72b0", edgecolor="white")
    if counts and max(counts) / max(min(counts), 1) > 50:
        ax.set_yscale("log")
    ax.set_xlabel(f"combinations of {label}, most frequent first ({len(counts)} observed)")
    ax.set_ylabel("images")
    ax.set_title(f"Long tail — imbalance ratio {_fmt(stats.get('imbalance_ratio'))}")
    _save(fig, paths["long_tail"], atomic_write_bytes, plt)

    x, y = lorenz_curve(counts)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.plot(x, y, color="#c44e52", label="Lorenz curve")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="equality")
    ax.fill_between(x, y, x, color="#c44e52", alpha=0.15)
    ax.set_xlabel(f"share of combinations of {label} (ascending count)")
    ax.set_ylabel("share of images")
    ax.set_title(f"Lorenz curve — Gini {_fmt(stats.get('gini'))}")
    ax.legend(loc="upper left")
    _save(fig, paths["lorenz"], atomic_write_bytes, plt)
    return {k: str(v) for k, v in paths.items()}


def _save(fig: Any, path: Path, write: Any, plt: Any) -> None:
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write(path, buf.getvalue())


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return "inf" if math.isinf(x) else f"{x:.3g}"
