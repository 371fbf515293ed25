"""Decoder-matched sharpness: how much Laplacian variance a VAE round trip keeps.

Every generated image leaves through the model's VAE decoder, so it can be at most as sharp as a
real image sent through that VAE and back. The sharpness check's limit (``sharpness_factor`` ×
the real set's low quantile) assumes a decoder that keeps detail, as SD's does at 512 px. The
mini base's 64 px VAE keeps about a tenth of the real renders' Laplacian variance, so that limit
would reject an ideal generator too. :func:`decoder_matched_factor` scales the factor by the
measured ratio, which keeps the check's meaning: reject images far softer than this decoder's
own reconstructions of real images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from craftlora.models.roundtrip import roundtrip_images
from craftlora.qc.measure import measure


def roundtrip_sharpness(vae: Any, images: Sequence[np.ndarray], *, analysis_size: int = 256,
                        batch: int = 32) -> dict[str, float]:
    """Median Laplacian variance of ``images`` (uint8 RGB, one size) and of their VAE round
    trips (latent mean)."""
    if not len(images):
        raise ValueError("roundtrip_sharpness needs at least one image")
    trip = [measure(b, analysis_size=analysis_size).sharpness
            for b in roundtrip_images(vae, images, batch)]
    real = [measure(a, analysis_size=analysis_size).sharpness for a in images]
    r, t = float(np.median(real)), float(np.median(trip))
    return {"n": len(real), "real_median": r, "roundtrip_median": t,
            "ratio": t / r if r > 0 else 1.0}


def decoder_matched_factor(factor: float, ratio: float) -> float:
    """The sharpness factor for images this decoder made (never above the configured one)."""
    return factor * min(1.0, max(ratio, 0.0))
