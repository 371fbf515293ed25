"""The automatic QC checks and the real reference they compare against.

Each check gives an ``Outcome`` (passed, score, detail) per image. Checks that compare with the
real set read their limits off a ``Reference`` built from the real images (by default the
train split): exposure and contrast must lie inside the real range (1st–99th percentile widened
by a margin), sharpness must not fall far below the real set's low quantile, and a generated
image must be neither a near-copy of a training image nor far from every real image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from craftlora.config import QCConfig
from craftlora.qc.measure import ImageStats, closest_copy, hamming, hashes_array, thumbs_array

#: Every check by name, in the order they run. "decode" gates all the others.
CHECKS = ("decode", "blank", "exposure", "contrast", "sharpness", "duplicate", "memorisation",
          "agreement", "outlier", "text_overlay", "distortion")
#: Checks an image must have passed (recorded) to count as passing QC; the rest count when run.
CORE_CHECKS = ("decode", "blank", "exposure", "contrast", "sharpness", "duplicate",
               "memorisation", "outlier")
#: Checks that need a judge; without one they are skipped and reported as skipped.
JUDGE_CHECKS = ("agreement",)
#: Checks a workspace turns on in ``[qc] optional_checks`` (character candidates need them).
OPTIONAL_CHECKS = ("text_overlay", "distortion")
#: Checks whose limits come from the real reference set.
REFERENCE_CHECKS = ("exposure", "contrast", "sharpness", "memorisation", "outlier",
                    "text_overlay", "distortion")


class QCError(RuntimeError):
    """QC cannot run (no images in the set, a reference set that is too small, ...)."""


@dataclass(frozen=True)
class Outcome:
    passed: bool
    score: float | None
    detail: str


@dataclass
class Reference:
    """Limits read off the real reference images, and their hashes and features."""

    ids: list[int]
    hashes: np.ndarray
    thumbs: np.ndarray
    exposure: tuple[float, float]
    contrast: tuple[float, float]
    sharpness_min: float
    fingerprint: str
    overlay_max: float = float("inf")
    off_axis_max: float = float("inf")
    features: np.ndarray | None = None  # outlier space (feature_id)
    feature_id: str = ""
    outlier_threshold: float = float("inf")
    domain: np.ndarray | None = None  # judge features for memorisation
    memo_threshold: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"n": len(self.ids), "exposure": self.exposure, "contrast": self.contrast,
                "sharpness_min": self.sharpness_min, "text_overlay_max": self.overlay_max,
                "off_axis_max": self.off_axis_max, "outlier_features": self.feature_id,
                "outlier_threshold": self.outlier_threshold,
                "memorisation_feature_threshold": self.memo_threshold if self.domain is not None
                else None}


def knn(query: np.ndarray, ref: np.ndarray, k: int, block: int = 512
        ) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances and indices of the ``k`` nearest rows of ``ref``, ascending."""
    k = min(k, len(ref))
    ref = np.asarray(ref, np.float64)
    rn = (ref**2).sum(axis=1)
    dists, idxs = [], []
    for i in range(0, len(query), block):
        q = np.asarray(query[i:i + block], np.float64)
        d2 = np.maximum((q**2).sum(axis=1)[:, None] + rn[None, :] - 2.0 * q @ ref.T, 0.0)
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        pd = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(pd, axis=1)
        idxs.append(np.take_along_axis(part, order, axis=1))
        dists.append(np.sqrt(np.take_along_axis(pd, order, axis=1)))
    if not dists:
        return np.zeros((0, k)), np.zeros((0, k), dtype=np.int64)
    return np.concatenate(dists), np.concatenate(idxs)


def _widened(values: np.ndarray, cfg: QCConfig) -> tuple[float, float]:
    lo, hi = np.quantile(values, cfg.range_quantiles)
    pad = cfg.range_margin * max(hi - lo, 1e-6)
    return float(lo - pad), float(hi + pad)


def build_reference(ids: list[int], stats: list[ImageStats], cfg: QCConfig, fingerprint: str,
                    *, features: np.ndarray | None = None, feature_id: str = "",
                    domain: np.ndarray | None = None) -> Reference:
    """Derive every limit from the real images' statistics and features."""
    ok = [s for s in stats if s.finite]
    if len(ok) < max(cfg.outlier_k + 2, 5):
        raise QCError(f"the real reference set has {len(ok)} usable images; QC needs at least "
                      f"{max(cfg.outlier_k + 2, 5)} to read its limits")
    ref = Reference(
        ids=list(ids),
        hashes=hashes_array(stats),
        thumbs=thumbs_array(stats),
        exposure=_widened(np.array([s.mean for s in ok]), cfg),
        contrast=_widened(np.array([s.std for s in ok]), cfg),
        sharpness_min=float(cfg.sharpness_factor
                            * np.quantile([s.sharpness for s in ok], cfg.sharpness_quantile)),
        fingerprint=fingerprint,
        overlay_max=max(cfg.overlay_floor, cfg.overlay_factor * float(
            np.quantile([s.overlay for s in ok], 0.99))),
        off_axis_max=min(1.0, cfg.distortion_factor * float(
            np.quantile([s.off_axis for s in ok], 0.99))),
    )
    if features is not None:
        dist, _ = knn(features, features, cfg.outlier_k + 1)  # column 0 is the point itself
        ref.features, ref.feature_id = features, feature_id
        ref.outlier_threshold = float(cfg.outlier_factor
                                      * np.quantile(dist[:, cfg.outlier_k], cfg.outlier_quantile))
    if domain is not None:
        dist, _ = knn(domain, domain, 2)
        ref.domain = domain
        ref.memo_threshold = float(cfg.memorisation_feature_ratio * np.median(dist[:, 1]))
    return ref


# -- per-image checks -----------------------------------------------------------------------
def check_blank(s: ImageStats, cfg: QCConfig) -> Outcome:
    if not s.finite:
        return Outcome(False, None, "pixel values are NaN or infinite")
    if s.mean < cfg.black_level:
        return Outcome(False, s.std, f"all black (mean luminance {s.mean:.1f})")
    if s.mean > cfg.white_level:
        return Outcome(False, s.std, f"all white (mean luminance {s.mean:.1f})")
    if s.std < cfg.flat_std:
        return Outcome(False, s.std, f"flat (luminance std {s.std:.2f} < {cfg.flat_std})")
    return Outcome(True, s.std, "")


def _in_range(value: float, bounds: tuple[float, float], what: str) -> Outcome:
    lo, hi = bounds
    if lo <= value <= hi:
        return Outcome(True, value, "")
    side = "below" if value < lo else "above"
    return Outcome(False, value,
                   f"{what} {value:.1f} {side} the real range [{lo:.1f}, {hi:.1f}]")


def check_exposure(s: ImageStats, ref: Reference) -> Outcome:
    return _in_range(s.mean, ref.exposure, "mean luminance")


def check_contrast(s: ImageStats, ref: Reference) -> Outcome:
    return _in_range(s.std, ref.contrast, "luminance std")


def check_sharpness(s: ImageStats, ref: Reference) -> Outcome:
    if s.sharpness >= ref.sharpness_min:
        return Outcome(True, s.sharpness, "")
    return Outcome(False, s.sharpness, f"variance of Laplacian {s.sharpness:.1f} < "
                                       f"{ref.sharpness_min:.1f} (real set's limit)")


def check_text_overlay(s: ImageStats, ref: Reference) -> Outcome:
    """A watermark or caption stamp: neutral hairline strokes crowding one border band."""
    if s.overlay <= ref.overlay_max:
        return Outcome(True, s.overlay, "")
    return Outcome(False, s.overlay, f"text or watermark strokes cover {s.overlay:.1%} of a "
                                     f"border band (limit {ref.overlay_max:.1%})")


def check_distortion(s: ImageStats, ref: Reference) -> Outcome:
    """A warped frame: more of the strongest edges off the axes than the reference set has."""
    if s.off_axis <= ref.off_axis_max:
        return Outcome(True, s.off_axis, "")
    return Outcome(False, s.off_axis, f"{s.off_axis:.0%} of the strongest edges are off axis "
                                      f"(reference limit {ref.off_axis_max:.0%}): warped outlines")


def check_duplicates(ids: list[int], stats: list[ImageStats], cfg: QCConfig,
                     only: set[int] | None = None) -> dict[int, Outcome]:
    """Within one set: an image fails when an earlier image (lower id) is a near-duplicate —
    perceptual hash within ``duplicate_hamming`` bits and thumbnails within ``duplicate_rms``.
    ``only`` limits which images get an outcome (all others still serve as earlier images)."""
    out: dict[int, Outcome] = {}
    order = np.argsort(ids)
    hashes, thumbs = hashes_array(stats), thumbs_array(stats)
    for pos, i in enumerate(order):
        if only is not None and ids[i] not in only:
            continue
        earlier = order[:pos]
        hit = closest_copy(stats[i].phash, stats[i].thumb, hashes[earlier], thumbs[earlier],
                           cfg.duplicate_hamming, cfg.duplicate_rms)
        if hit is None:
            out[ids[i]] = Outcome(True, None, "")
        else:
            j, bits, rms = hit
            out[ids[i]] = Outcome(False, rms, f"near-duplicate of image {ids[earlier[j]]} "
                                              f"(hash distance {bits}, thumbnail RMS {rms:.1f})")
    return out


def check_memorisation(s: ImageStats, nearest: tuple[float, int] | None, ref: Reference,
                       cfg: QCConfig) -> Outcome:
    """Too close to a training image: perceptual hash + thumbnail, or (with a judge) domain
    features nearer than a fraction of the real set's typical nearest-neighbour distance.
    ``nearest`` = (distance, reference index) of the image's nearest training image in domain
    features, or None without a judge."""
    hit = closest_copy(s.phash, s.thumb, ref.hashes, ref.thumbs, cfg.memorisation_hamming,
                       cfg.memorisation_rms)
    if hit is not None:
        j, bits, rms = hit
        return Outcome(False, rms, f"copies training image {ref.ids[j]} (hash distance {bits},"
                                   f" thumbnail RMS {rms:.1f})")
    score = float(hamming(s.phash, ref.hashes).min())
    if nearest is not None and nearest[0] < ref.memo_threshold:
        d, j = nearest
        return Outcome(False, d, f"domain features within {d:.3g} of training image "
                                 f"{ref.ids[j]} (limit {ref.memo_threshold:.3g})")
    return Outcome(True, score, "")


def check_agreement(predicted: Mapping[str, str], intended: Mapping[str, str],
                    cfg: QCConfig) -> Outcome:
    """Share of the intended attributes the judge reads off the image."""
    right = [k for k, v in intended.items() if predicted.get(k) == v]
    score = len(right) / len(intended)
    if score >= cfg.min_agreement:
        return Outcome(True, score, "")
    wrong = ", ".join(f"{k}: {predicted.get(k)!s} ≠ {v}" for k, v in intended.items()
                      if predicted.get(k) != v)
    return Outcome(False, score, f"judge reads {wrong}")


def check_outliers(features: np.ndarray, ref: Reference, cfg: QCConfig) -> list[Outcome]:
    """Per row: fails when its k-th nearest real image is farther than the real set's own
    high quantile of that distance × factor."""
    dist, _ = knn(features, ref.features, cfg.outlier_k)
    out = []
    for d in dist[:, -1]:
        if d <= ref.outlier_threshold:
            out.append(Outcome(True, float(d), ""))
        else:
            out.append(Outcome(False, float(d), f"{cfg.outlier_k}-NN distance {d:.3g} to the real "
                                                f"set > {ref.outlier_threshold:.3g} "
                                                f"({ref.feature_id} features)"))
    return out
