"""Per-image measurements the QC checks compare: luminance statistics, sharpness and a
perceptual hash, all at one analysis size so that real and generated images compare fairly."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import imagehash
import numpy as np
from PIL import Image

THUMB = 32


@dataclass(frozen=True)
class ImageStats:
    finite: bool
    mean: float  # luminance mean, 0..255 (exposure)
    std: float  # luminance std (contrast)
    sharpness: float  # variance of the Laplacian of the luminance
    phash: int  # 64-bit perceptual hash (hash_size² bits)
    thumb: np.ndarray  # 32×32 grey thumbnail, float32, flattened (confirms hash matches)
    overlay: float = 0.0  # text-overlay score: densest border band's near-white/black strokes
    off_axis: float = 0.0  # distortion score: share of strong edges off the axes


def analysis_view(rgb: np.ndarray, size: int) -> np.ndarray:
    """Shrink (never enlarge) so the longer side is at most ``size``; INTER_AREA."""
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA)


def perceptual_hash(rgb: np.ndarray, hash_size: int = 8) -> int:
    """DCT perceptual hash (ImageHash ``phash``) packed into an int."""
    bits = imagehash.phash(Image.fromarray(rgb), hash_size=hash_size).hash.reshape(-1)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def measure(rgb: np.ndarray, *, analysis_size: int = 256, hash_size: int = 8) -> ImageStats:
    """Statistics of one RGB image (uint8, or float on the 0..255 scale)."""
    a = np.asarray(rgb)
    if a.dtype != np.uint8:
        if not np.isfinite(a).all():
            return ImageStats(False, float("nan"), float("nan"), float("nan"), 0,
                              np.zeros(THUMB * THUMB, np.float32))
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    a = analysis_view(a, analysis_size)
    grey = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    lum = grey.astype(np.float64)
    sharp = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    thumb = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    return ImageStats(True, float(lum.mean()), float(lum.std()), sharp,
                      perceptual_hash(a, hash_size), thumb.astype(np.float32).reshape(-1),
                      overlay_score(a), off_axis_share(grey))


def overlay_score(rgb: np.ndarray, band: float = 0.22) -> float:
    """Share of a border band (top, bottom, left, right) covered by thin neutral white or
    black strokes with a sharp edge: the mark a watermark or caption stamp leaves.
    The densest band counts; art rarely has neutral hairlines along one border."""
    c = np.asarray(rgb, np.int16)[..., :3]
    extreme = (c.min(axis=-1) >= 225) | (c.max(axis=-1) <= 30)
    g = cv2.cvtColor(np.asarray(rgb, np.uint8)[..., :3], cv2.COLOR_RGB2GRAY).astype(np.float32)
    edge = np.abs(cv2.Laplacian(g, cv2.CV_32F)) > 90
    strokes = extreme & cv2.dilate(edge.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    h, w = g.shape
    bh, bw = max(1, round(h * band)), max(1, round(w * band))
    bands = (strokes[:bh], strokes[-bh:], strokes[:, :bw], strokes[:, -bw:])
    return float(max(b.mean() for b in bands))


def off_axis_share(grey: np.ndarray, top: float = 0.9, tolerance: float = 12.0) -> float:
    """Share of the strongest gradients (top 10 %) not within ``tolerance`` degrees of the
    horizontal or vertical: a wavy warp bends the straight outlines of drawn art off axis.
    Compared with the reference set's own share, so photos with many slanted edges are fine."""
    g = cv2.GaussianBlur(grey.astype(np.float32), (3, 3), 0)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    mag = np.hypot(gx, gy)
    strong = mag > np.quantile(mag, top)
    if not strong.any():
        return 0.0
    ang = np.degrees(np.arctan2(gy, gx)) % 90.0
    on_axis = (ang < tolerance) | (ang > 90.0 - tolerance)
    return float(1.0 - (on_axis & strong).sum() / strong.sum())


def hamming(h: int, others: np.ndarray) -> np.ndarray:
    """Bit distance from hash ``h`` to each hash in the uint64 array ``others``."""
    return np.bitwise_count(np.bitwise_xor(others, np.uint64(h))).astype(np.int64)


def hashes_array(stats: list[ImageStats]) -> np.ndarray:
    return np.array([s.phash for s in stats], dtype=np.uint64)


def thumbs_array(stats: list[ImageStats]) -> np.ndarray:
    return np.stack([s.thumb for s in stats]) if stats else np.zeros((0, THUMB * THUMB))


def closest_copy(phash: int, thumb: np.ndarray, hashes: np.ndarray, thumbs: np.ndarray,
                 max_bits: int, max_rms: float) -> tuple[int, int, float] | None:
    """The nearest image that the hash shortlists (≤ ``max_bits``) and the thumbnail confirms
    (RMS ≤ ``max_rms``): (index, bits, rms), or None."""
    if len(hashes) == 0:
        return None
    bits = hamming(phash, hashes)
    cand = np.flatnonzero(bits <= max_bits)
    if cand.size == 0:
        return None
    rms = np.sqrt(((thumbs[cand] - thumb[None, :]) ** 2).mean(axis=1))
    j = int(np.argmin(rms))
    if rms[j] > max_rms:
        return None
    return int(cand[j]), int(bits[cand[j]]), float(rms[j])
