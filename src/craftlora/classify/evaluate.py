"""Per-task classification metrics through scikit-learn.

top-1 accuracy, top-5 accuracy (1.0 by definition when a task has ≤ 5 classes), F1-macro and
F1-weighted over the classes present in the evaluated labels, macro precision/recall, per-class
precision/recall/F1/support and the confusion matrix over every class of the task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)


def top_k(y_true: np.ndarray, scores: np.ndarray, k: int = 5) -> float:
    """Top-k accuracy over all the task's classes (scores: (N, K))."""
    n_classes = scores.shape[1]
    if k >= n_classes:
        return 1.0
    return float(top_k_accuracy_score(y_true, scores, k=k, labels=np.arange(n_classes)))


def f1_macro(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[int] | None = None,
             sample_weight: np.ndarray | None = None) -> float:
    """F1-macro over ``labels`` (default: the classes present in ``y_true``), class ids ≥ 0.

    Equal to sklearn's ``f1_score(average="macro", zero_division=0)`` in a few numpy ops: the
    experiment's paired bootstrap calls it ~40,000 times, where sklearn's input checks took a
    minute.
    """
    yt, yp = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    lab = np.unique(yt) if labels is None else np.asarray(labels, np.int64)
    if len(lab) == 0:
        return 0.0
    w = np.ones(len(yt)) if sample_weight is None else np.asarray(sample_weight, float)
    size = max(int(yt.max(initial=0)), int(yp.max(initial=0)), int(lab.max())) + 1
    hit = yt == yp
    true_w = np.bincount(yt, weights=w, minlength=size)[lab]
    pred_w = np.bincount(yp, weights=w, minlength=size)[lab]
    tp = np.bincount(yt[hit], weights=w[hit], minlength=size)[lab]
    denom = true_w + pred_w
    return float(np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0).mean())


def task_metrics(y_true: np.ndarray, scores: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Every metric of one task; ``scores`` are logits or probabilities (N, K)."""
    keep = y_true >= 0
    y_true, scores = y_true[keep], scores[keep]
    y_pred = scores.argmax(1)
    present = np.unique(y_true)
    all_labels = np.arange(len(names))
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=all_labels, zero_division=0
    )
    pm, rm, _, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=present, average="macro", zero_division=0
    )
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "top5": top_k(y_true, scores, 5),
        "f1_macro": f1_macro(y_true, y_pred, present),
        "f1_weighted": float(f1_score(y_true, y_pred, labels=present, average="weighted",
                                      zero_division=0)),
        "precision_macro": float(pm),
        "recall_macro": float(rm),
        "per_class": {
            names[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                       "support": int(s[i])}
            for i in all_labels
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=all_labels).tolist(),
        "labels": list(names),
    }


def evaluate_scores(labels: Mapping[str, np.ndarray], scores: Mapping[str, np.ndarray],
                    tasks: Mapping[str, Sequence[str]]) -> dict[str, dict[str, Any]]:
    """``task_metrics`` for every task."""
    return {t: task_metrics(labels[t], scores[t], names) for t, names in tasks.items()}


def mean_f1_macro(metrics: Mapping[str, Mapping[str, Any]]) -> float:
    """The model-selection figure: mean F1-macro over tasks."""
    return float(np.mean([m["f1_macro"] for m in metrics.values()]))


def combo_accuracy_by_frequency(
    combos: Sequence[tuple[str, ...]],
    labels: Mapping[str, np.ndarray],
    preds: Mapping[str, np.ndarray],
    train_counts: Mapping[tuple[str, ...], int],
    edges: Sequence[int] = (10, 50),
) -> dict[str, dict[str, Any]]:
    """Exact-combination and per-task accuracy of test images grouped by how many training
    images their combination had: rare (≤ edges[0]), medium (≤ edges[1]), common (more)."""
    names = [f"rare (n<={edges[0]})", f"medium ({edges[0]}<n<={edges[1]})",
             f"common (n>{edges[1]})"]
    bucket = np.array([
        0 if train_counts.get(c, 0) <= edges[0] else 1 if train_counts.get(c, 0) <= edges[1] else 2
        for c in combos
    ], dtype=np.int64)
    exact = np.ones(len(combos), dtype=bool)
    for t in labels:
        exact &= labels[t] == preds[t]
    out: dict[str, dict[str, Any]] = {}
    for b, name in enumerate(names):
        m = bucket == b
        if not m.any():
            continue
        out[name] = {
            "n_images": int(m.sum()),
            "n_combos": len({c for c, k in zip(combos, m, strict=True) if k}),
            "exact_accuracy": float(exact[m].mean()),
            "task_accuracy": {t: float((labels[t][m] == preds[t][m]).mean()) for t in labels},
        }
    return out
