"""Distances between two feature sets: Fréchet distance (FID when the features are Inception
pool3) and the kernel inception distance (KID, unbiased MMD² with a cubic polynomial kernel).

Every result reports the sample sizes: FD is biased upwards at small N, so figures are only
comparable at equal N.
"""

from __future__ import annotations

import numpy as np


def _as_feats(f: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(f, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected (N, D) features, got shape {a.shape}")
    if a.shape[0] < 2:
        raise ValueError(f"{name}: need at least 2 samples, got {a.shape[0]}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: features contain NaN or inf")
    return a


def gaussian_stats(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of a feature set."""
    a = _as_feats(f, "features")
    return a.mean(axis=0), np.atleast_2d(np.cov(a, rowvar=False))


def frechet_from_stats(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray
                       ) -> float:
    """‖μ₁−μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½).

    Tr((Σ₁Σ₂)^½) is computed as Σ √λ of the symmetric PSD matrix Σ₁^½ Σ₂ Σ₁^½, which has the
    same eigenvalues as Σ₁Σ₂ and stays real and stable when the covariances are singular.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(s1).astype(np.float64), np.atleast_2d(s2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"feature dimensions differ: {mu1.shape} vs {mu2.shape}")
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = root1 @ s2 @ root1
    lam = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(lam, 0.0, None)).sum())
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(fd, 0.0)


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets."""
    a, b = _as_feats(f1, "set 1"), _as_feats(f2, "set 2")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    return frechet_from_stats(*gaussian_stats(a), *gaussian_stats(b))


def fd_between(feats1: np.ndarray, feats2: np.ndarray) -> dict[str, float | int]:
    """``{"fd", "n1", "n2"}``."""
    return {"fd": frechet_distance(feats1, feats2), "n1": int(len(feats1)),
            "n2": int(len(feats2))}


def _poly_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with k(a, b) = (aᵀb / d + 1)³."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(f1: np.ndarray, f2: np.ndarray, subsets: int = 100, subset_size: int | None = None,
        seed: int = 0) -> dict[str, float | int]:
    """Kernel inception distance: mean and std of unbiased MMD² over random subsets.

    ``subset_size`` defaults to min(N₁, N₂, 1000) (clean-fid); subsets are drawn without
    replacement from each set with a seeded generator.
    """
    a, b = _as_feats(f1, "set 1"), _as_feats(f2, "set 2")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    m = subset_size or min(len(a), len(b), 1000)
    if m < 2 or m > min(len(a), len(b)):
        raise ValueError(f"subset_size {m} must be in [2, min(N1, N2) = {min(len(a), len(b))}]")
    rng = np.random.default_rng(seed)
    vals = np.array([
        _poly_mmd2(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)])
        for _ in range(subsets)
    ])
    return {"mean": float(vals.mean()), "std": float(vals.std()), "n1": int(len(a)),
            "n2": int(len(b)), "subset_size": int(m), "subsets": int(subsets)}
