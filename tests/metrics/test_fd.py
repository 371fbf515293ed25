"""FD, KID and precision/recall on known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import sqrtm

from craftlora.metrics.fd import fd_between, frechet_distance, frechet_from_stats, kid
from craftlora.metrics.manifold import precision_recall


def test_identical_sets_give_zero():
    f = np.random.default_rng(0).normal(size=(300, 16))
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-8)
    r = fd_between(f, f.copy())
    assert r["n1"] == 300 and r["n2"] == 300 and r["fd"] < 1e-8


def test_singular_covariance_identical_sets_still_zero():
    f = np.random.default_rng(1).normal(size=(10, 64))  # N < D: rank-deficient covariance
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-6)


def test_diagonal_gaussians_match_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 1.5])
    closed = float(((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum())  # = 5 + 4 + 0 + 1
    assert closed == pytest.approx(10.0)
    got = frechet_from_stats(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(closed, rel=1e-10)
    rng = np.random.default_rng(2)
    a = mu1 + s1 * rng.normal(size=(100_000, 3))
    b = mu2 + s2 * rng.normal(size=(100_000, 3))
    assert frechet_distance(a, b) == pytest.approx(closed, rel=0.02)


def test_general_covariances_match_matrix_square_root_formula():
    rng = np.random.default_rng(3)
    m1, m2 = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    c1, c2 = m1 @ m1.T + 0.1 * np.eye(5), m2 @ m2.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * np.real(sqrtm(c1 @ c2)))
    assert frechet_from_stats(mu1, c1, mu2, c2) == pytest.approx(ref, rel=1e-8)


def test_one_dimensional_closed_form():
    rng = np.random.default_rng(4)
    a, b = rng.normal(2.0, 1.0, size=(200_000, 1)), rng.normal(-1.0, 3.0, size=(200_000, 1))
    assert frechet_distance(a, b) == pytest.approx(9.0 + 4.0, rel=0.01)


def test_fd_rejects_bad_input():
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((5, 3), np.nan), np.zeros((5, 3)))


def test_kid_hand_computed_mmd():
    # k(a, b) = (ab + 1)^3 with d = 1: Kxx off-diag 1, Kyy off-diag 27, Kxy mean 37/4
    x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    r = kid(x, y, subsets=3, subset_size=2)
    assert r["mean"] == pytest.approx(1 + 27 - 2 * 37 / 4)
    assert r["std"] == pytest.approx(0.0) and r["n1"] == 2 and r["subset_size"] == 2


def test_kid_same_distribution_near_zero_shifted_positive():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same = kid(a, b, subsets=50, subset_size=200)
    shifted = kid(a, b + 1.0, subsets=50, subset_size=200)
    assert abs(same["mean"]) < 0.05 * shifted["mean"]
    assert shifted["mean"] > 0.1
    assert kid(a, b, subsets=5, seed=1) == kid(a, b, subsets=5, seed=1)


def test_precision_recall_known_cases():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(300, 4))
    assert precision_recall(real, real.copy()) == {
        "precision": 1.0, "recall": 1.0, "k": 3, "n_real": 300, "n_fake": 300}
    far = precision_recall(real, real + 100.0)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    # mode dropping: fakes from one half of the real distribution only
    half = real[real[:, 0] > 0.5]
    dropped = precision_recall(real, half)
    assert dropped["precision"] == 1.0 and dropped["recall"] < 0.6
