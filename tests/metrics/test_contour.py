"""Contour adherence: a sketch against its own edges, then shifted."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from craftlora.metrics.contour import (
    canny_edges,
    chamfer,
    contour_adherence,
    edge_f1,
    sketch_mask,
    tolerant_edge_f1,
)


def _sketch() -> np.ndarray:
    """A vessel silhouette: filled body and neck, so each outline is one edge."""
    img = np.full((96, 96, 3), 255, np.uint8)
    cv2.ellipse(img, (48, 56), (22, 30), 0, 0, 360, (0, 0, 0), -1)
    cv2.rectangle(img, (40, 12), (56, 30), (0, 0, 0), -1)
    return img


def _shift(img: np.ndarray, dx: int) -> np.ndarray:
    """Move the drawing ``dx`` px to the right (white fills in)."""
    m = np.float32([[1, 0, dx], [0, 1, 0]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderValue=(255, 255, 255))


def test_sketch_against_its_own_edges_is_perfect():
    s = _sketch()
    ref = canny_edges(s)
    assert ref.dtype == bool and ref.shape == (96, 96) and ref.sum() > 100
    assert edge_f1(canny_edges(s), ref) == 1.0
    assert tolerant_edge_f1(canny_edges(s), ref, radius=2) == 1.0
    assert chamfer(canny_edges(s), ref) == 0.0
    r = contour_adherence(ref, s)
    assert r["edge_f1"] == 1.0 and r["edge_detector"] == "cv2.Canny(100,200)"


def test_shifting_lowers_f1_monotonically():
    s = _sketch()
    ref = canny_edges(s)
    shifts = range(0, 9)
    f1 = [edge_f1(canny_edges(_shift(s, d)), ref) for d in shifts]
    tol = [tolerant_edge_f1(canny_edges(_shift(s, d)), ref, radius=2) for d in shifts]
    ch = [chamfer(canny_edges(_shift(s, d)), ref) for d in shifts]
    assert all(a > b for a, b in zip(f1, f1[1:], strict=False)), f1
    assert f1[1] < 0.5  # pixelwise F1 has no tolerance: 1 px already costs most of it
    assert all(a >= b for a, b in zip(tol, tol[1:], strict=False)), tol
    assert tol[2] == 1.0 and tol[3] < 0.5  # shifts up to the 2 px radius are forgiven
    assert all(a < b for a, b in zip(ch, ch[1:], strict=False)), ch


def test_edge_cases_and_shapes():
    empty = np.zeros((8, 8), bool)
    one = empty.copy()
    one[2, 2] = True
    assert edge_f1(empty, empty) == 1.0 and edge_f1(one, empty) == 0.0
    assert tolerant_edge_f1(empty, one) == 0.0 and chamfer(empty, one) == float("inf")
    with pytest.raises(ValueError, match="same shape"):
        edge_f1(np.zeros((4, 4), bool), np.zeros((4, 5), bool))


def test_pixelwise_f1_hand_count():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, :4] = True  # 4 predicted
    b[0, :2] = True  # 2 reference, both hit → P = 0.5, R = 1
    b[3, 3] = True  # 3 reference → R = 2/3
    assert edge_f1(a, b) == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_sketch_mask_takes_the_strokes():
    img = np.full((64, 64, 3), 255, np.uint8)
    cv2.circle(img, (32, 32), 20, (0, 0, 0), 2)
    m = sketch_mask(img)
    assert 0.01 < m.mean() < 0.2
    assert sketch_mask(255 - img).sum() == m.sum()
