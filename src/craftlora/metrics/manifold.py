"""Improved precision and recall of distributions (Kynkäänniemi et al., 2019).

Each set's manifold is the union of balls around its samples with radius = distance to the
sample's k-th nearest neighbour in the same set. Precision = share of generated samples inside
the real manifold; recall = share of real samples inside the generated manifold.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import pairwise_distances


def _kth_radius(x: np.ndarray, k: int) -> np.ndarray:
    d = pairwise_distances(x, x)
    # column 0 of the sorted row is the sample itself (distance 0)
    return np.partition(d, k, axis=1)[:, k]


def _inside(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    d = pairwise_distances(points, centres)
    return (d <= radii[None, :]).any(axis=1)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float | int]:
    """``{"precision", "recall", "k", "n_real", "n_fake"}`` for two (N, D) feature sets."""
    r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ValueError(f"need (N, D) feature sets of equal D, got {r.shape} and {f.shape}")
    if min(len(r), len(f)) <= k:
        raise ValueError(f"each set needs more than k={k} samples ({len(r)}, {len(f)})")
    precision = float(_inside(f, r, _kth_radius(r, k)).mean())
    recall = float(_inside(r, f, _kth_radius(f, k)).mean())
    return {"precision": precision, "recall": recall, "k": int(k), "n_real": int(len(r)),
            "n_fake": int(len(f))}
