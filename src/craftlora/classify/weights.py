"""Class weights by effective number of samples and the multi-task weighted loss.

Cui et al. (CVPR 2019): the effective number of ``n`` samples is ``(1 - β^n) / (1 - β)``; a
class's weight is its inverse, normalised so that the weights of the classes present sum to
their count, then capped. A class absent from the training set gets weight 0 (it is never a
target, so its weight never enters the loss).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

DEFAULT_TASK_WEIGHTS: dict[str, float] = {"dynasty": 1.0, "kiln": 1.2, "glaze": 2.0, "type": 1.5}
# The mini world's from-scratch classifiers (the experiment's and the judge): vessel type is read
# from the silhouette, which such a network learns last; at 1.5 type F1 stayed near 0.50, at 2.0
# it reached 0.73 (issue 4, one seed), at 3.0 it starved the other tasks.
MINI_TASK_WEIGHTS: dict[str, float] = {**DEFAULT_TASK_WEIGHTS, "type": 2.0}


def effective_number_weights(
    counts: Sequence[int] | np.ndarray, beta: float = 0.999, cap: float = 10.0
) -> np.ndarray:
    """Per-class weights ∝ (1 - β) / (1 - β^n_c), normalised to sum to #present, capped."""
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), not {beta}")
    n = np.asarray(counts, dtype=np.float64)
    if (n < 0).any():
        raise ValueError("class counts must be non-negative")
    present = n > 0
    w = np.zeros_like(n)
    w[present] = (1.0 - beta) / (1.0 - np.power(beta, n[present]))
    if present.any():
        w[present] *= present.sum() / w[present].sum()
    return np.minimum(w, cap)


def class_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """How many samples carry each class index (labels < 0 are ignored)."""
    labels = np.asarray(labels)
    return np.bincount(labels[labels >= 0], minlength=n_classes)


class MultiTaskLoss:
    """Σ_t λ_t · CE_t with per-class weights; targets of -1 (unknown) are ignored."""

    def __init__(self, class_weights: Mapping[str, torch.Tensor],
                 task_weights: Mapping[str, float]):
        self.task_weights = {t: float(task_weights.get(t, 1.0)) for t in class_weights}
        self.losses = {
            t: nn.CrossEntropyLoss(weight=w.float(), ignore_index=-1)
            for t, w in class_weights.items()
        }

    def __call__(self, logits: Mapping[str, torch.Tensor],
                targets: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        total = torch.zeros(())
        parts: dict[str, float] = {}
        for t, loss in self.losses.items():
            if bool((targets[t] >= 0).any()):
                value = loss(logits[t], targets[t])
                total = total + self.task_weights[t] * value
                parts[t] = float(value.detach())
        return total, parts
