"""Per-seed figures → mean, std and the paired bootstrap interval of a difference."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def paired_seed_bootstrap(base: Mapping[int, float], other: Mapping[int, float],
                          n_boot: int = 2000, seed: int = 0) -> dict[str, float | int | None]:
    """Mean over the shared seeds of other − base, with a 95 % percentile interval from
    resampling the seed pairs (same seed = same data order and noise: paired).

    With one shared seed the interval is that one difference (no spread to resample)."""
    shared = sorted(set(base) & set(other))
    if not shared:
        return {"delta": None, "ci_low": None, "ci_high": None, "n_seeds": 0}
    d = np.array([other[s] - base[s] for s in shared], dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(axis=1)
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return {"delta": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi),
            "n_seeds": len(d), "p_le_0": float((draws <= 0).mean())}


def seed_interval(values: Mapping[int, float], n_boot: int = 2000, seed: int = 0
                  ) -> tuple[float, float]:
    """95 % bootstrap interval of the mean over seeds."""
    v = np.array([values[s] for s in sorted(values)], dtype=np.float64)
    draws = v[np.random.default_rng(seed).integers(0, len(v), (n_boot, len(v)))].mean(axis=1)
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return float(lo), float(hi)
