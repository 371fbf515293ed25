"""Contour adherence between a sketch (or a condition edge map) and a generated image.

- ControlNet++ protocol: Canny (cv2, thresholds 100/200) re-detected on the output, pixelwise
  F1 against the input edge map, no tolerance (``canny_edges`` + ``edge_f1``).
- For freehand sketches: a tolerant edge F1 (a pixel counts when the other map has an edge
  within ``radius`` px, Euclidean) and the symmetric Chamfer distance in pixels.
Edge maps are boolean HxW arrays of equal shape. Two empty maps agree perfectly (F1 = 1).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from craftlora.metrics.images import ImageLike, as_rgb_array

CANNY_LOW, CANNY_HIGH = 100, 200


def _grey(img: ImageLike) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim == 2 and a.dtype == np.uint8:
        return a
    return cv2.cvtColor(as_rgb_array(img), cv2.COLOR_RGB2GRAY)


def canny_edges(img: ImageLike, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> np.ndarray:
    """Canny edges of an image as a bool HxW map (cv2, L1 gradient, aperture 3)."""
    return cv2.Canny(_grey(img), low, high) > 0


def sketch_mask(img: ImageLike, threshold: int = 128) -> np.ndarray:
    """The strokes of a line drawing as a bool map: the minority side of a grey threshold
    (dark lines on light paper, or light lines on dark)."""
    dark = _grey(img) < threshold
    return dark if dark.mean() <= 0.5 else ~dark


def _check(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, r = np.asarray(pred, bool), np.asarray(ref, bool)
    if p.shape != r.shape or p.ndim != 2:
        raise ValueError(f"edge maps must be 2-D and the same shape: {p.shape} vs {r.shape}")
    return p, r


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def edge_f1(pred_edges: np.ndarray, ref_edges: np.ndarray) -> float:
    """Pixelwise F1 of ``pred_edges`` against ``ref_edges`` (no tolerance)."""
    p, r = _check(pred_edges, ref_edges)
    if not p.any() and not r.any():
        return 1.0
    tp = float(np.logical_and(p, r).sum())
    return _f1(tp / p.sum() if p.any() else 0.0, tp / r.sum() if r.any() else 0.0)


def distance_to(edges: np.ndarray) -> np.ndarray:
    """Euclidean distance from every pixel to the nearest edge pixel (inf when none)."""
    if not edges.any():
        return np.full(edges.shape, np.inf)
    src = np.where(edges, 0, 255).astype(np.uint8)
    return cv2.distanceTransform(src, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)


def tolerant_edge_f1(pred: np.ndarray, ref: np.ndarray, radius: float = 2) -> float:
    """F1 where P = |pred within r of ref| / |pred| and R = |ref within r of pred| / |ref|."""
    p, r = _check(pred, ref)
    if not p.any() and not r.any():
        return 1.0
    if not p.any() or not r.any():
        return 0.0
    precision = float((distance_to(r)[p] <= radius).mean())
    recall = float((distance_to(p)[r] <= radius).mean())
    return _f1(precision, recall)


def chamfer(pred: np.ndarray, ref: np.ndarray) -> float:
    """Symmetric Chamfer distance ½(mean_{q∈pred} d(q, ref) + mean_{p∈ref} d(p, pred)), px."""
    p, r = _check(pred, ref)
    if not p.any() and not r.any():
        return 0.0
    if not p.any() or not r.any():
        return float("inf")
    return 0.5 * (float(distance_to(r)[p].mean()) + float(distance_to(p)[r].mean()))


def contour_adherence(ref_edges: np.ndarray, image: ImageLike, radius: float = 2
                      ) -> dict[str, Any]:
    """Canny on ``image`` against ``ref_edges``: pixelwise F1, tolerant F1 and Chamfer."""
    pred = canny_edges(image)
    return {
        "edge_f1": edge_f1(pred, ref_edges),
        "tolerant_f1": tolerant_edge_f1(pred, ref_edges, radius),
        "chamfer": chamfer(pred, ref_edges),
        "radius": radius,
        "edge_detector": f"cv2.Canny({CANNY_LOW},{CANNY_HIGH})",
    }
