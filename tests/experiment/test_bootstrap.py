"""The delta CI covers training-run noise (seeds), not only test-image noise."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from craftlora.classify.evaluate import f1_macro
from craftlora.experiment.summary import paired_bootstrap


def _preds(y: np.ndarray, wrong: int, rng: np.random.Generator) -> np.ndarray:
    p = y.copy()
    idx = rng.choice(len(y), wrong, replace=False)
    p[idx] = (y[idx] + 1) % 4
    return p


def test_seed_to_seed_swings_widen_the_interval_to_include_zero():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 150)
    a = [_preds(y, 150, rng) for _ in range(3)]
    # b is much better on one seed and much worse on another: a noisy training change
    b = [_preds(y, 60, rng), _preds(y, 240, rng), _preds(y, 140, rng)]
    r = paired_bootstrap(y, a, b, [0, 1, 2, 3], n_boot=300)
    assert r["ci_low"] < 0 < r["ci_high"]
    assert r["ci_high"] - r["ci_low"] > 0.2


def test_a_consistent_gain_keeps_an_interval_above_zero():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 150)
    a = [_preds(y, 150, rng) for _ in range(3)]
    b = [_preds(y, 60 + 5 * i, rng) for i in range(3)]
    r = paired_bootstrap(y, a, b, [0, 1, 2, 3], n_boot=300)
    assert 0.1 < r["ci_low"] <= r["delta"] <= r["ci_high"]
    assert r["p_le_0"] == 0.0


def test_f1_macro_equals_sklearn():
    rng = np.random.default_rng(2)
    for trial in range(40):
        n = int(rng.integers(1, 60))
        y = rng.integers(0, 6, n)
        p = np.where(rng.random(n) < 0.5, y, rng.integers(0, 7, n))  # 6: a class never true
        labels = sorted(rng.choice(7, int(rng.integers(1, 8)), replace=False).tolist())
        if trial % 5 == 0:
            labels = None  # default: the classes present in y_true
        w = None if trial % 2 else np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        want = f1_score(y, p, labels=np.unique(y) if labels is None else labels,
                        average="macro", zero_division=0, sample_weight=w)
        assert abs(f1_macro(y, p, labels, w) - want) < 1e-12, (trial, labels)
