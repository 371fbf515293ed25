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
                      perceptual_hash(a, hash_size), thumb.astype(np.float32).reshape(-1))


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
