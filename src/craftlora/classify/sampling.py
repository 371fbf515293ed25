"""Sampling weights for imbalanced multi-task data.

``task`` sampling draws each sample with weight 1 / n(its class on the chosen task) — the
study's ``WeightedRandomSampler`` over glaze; ``combo`` sampling weights 1 / √n(its exact
attribute combination); both can be combined (product). Threshold augmentation repeats the
samples of every combination below a threshold until it reaches it (the copies are augmented
online, so each repeat is a different augmented view).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler


def sample_weights(
    task_labels: np.ndarray | None, combos: Sequence[tuple[str, ...]] | None
) -> np.ndarray:
    """Per-sample weights: 1/n_class(task) and/or 1/√n_combo (whichever are given)."""
    if task_labels is None and combos is None:
        raise ValueError("sample_weights needs task labels, combinations, or both")
    n = len(task_labels) if task_labels is not None else len(combos or [])
    w = np.ones(n, dtype=np.float64)
    if task_labels is not None:
        labels = np.asarray(task_labels)
        counts = Counter(labels.tolist())
        w *= np.array([1.0 / counts[v] for v in labels.tolist()])
    if combos is not None:
        if len(combos) != n:
            raise ValueError("task labels and combinations differ in length")
        counts_c = Counter(combos)
        w *= np.array([1.0 / math.sqrt(counts_c[c]) for c in combos])
    return w


def make_sampler(weights: np.ndarray, seed: int, num_samples: int | None = None
                 ) -> WeightedRandomSampler:
    """A seeded ``WeightedRandomSampler`` drawing with replacement."""
    g = torch.Generator().manual_seed(int(seed))
    return WeightedRandomSampler(
        torch.as_tensor(weights, dtype=torch.double),
        num_samples=int(num_samples or len(weights)),
        replacement=True,
        generator=g,
    )


def threshold_repeat(combos: Sequence[tuple[str, ...]], threshold: int) -> np.ndarray:
    """Indices where each combination below ``threshold`` is repeated up to ``threshold``."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, c in enumerate(combos):
        groups.setdefault(c, []).append(i)
    out: list[int] = list(range(len(combos)))
    for idx in groups.values():
        missing = threshold - len(idx)
        if missing > 0:
            out.extend(idx[k % len(idx)] for k in range(missing))
    return np.asarray(out, dtype=np.int64)
