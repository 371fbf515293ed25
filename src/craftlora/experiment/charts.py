"""Charts of an experiment's results as PNG bytes (for pages that inline them)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def png_bytes(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def deltas_chart(results: Mapping[str, Any]) -> bytes:
    """Each mix's change in test F1-macro against the baseline per task, with its 95 % CI."""
    deltas = results["deltas"]
    tasks = list(results["tasks"])
    names = list(deltas)
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.32 * max(1, len(names) * len(tasks))))
    y, labels = 0, []
    for i, name in enumerate(names):
        for t in tasks:
            d = deltas[name]["tasks"][t]["f1_macro"]
            ax.errorbar(d["delta"], y, xerr=[[d["delta"] - d["ci_low"]],
                                             [d["ci_high"] - d["delta"]]],
                        fmt="o", color=f"C{i}", capsize=3)
            labels.append(f"{name}: {t}")
            y += 1
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(np.arange(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"change in test F1-macro vs {results.get('baseline', 'baseline')} "
                  "(95 % bootstrap CI)")
    return png_bytes(fig)
