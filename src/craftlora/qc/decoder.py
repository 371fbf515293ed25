"""Decoder-matched sharpness: how much Laplacian variance a VAE round trip keeps.

Every generated image leaves through the model's VAE decoder, so it can be at most as sharp as a
real image sent through that VAE and back. The sharpness check's limit (``sharpness_factor`` ×
the real set's low quantile) assumes a decoder that keeps detail, as SD's does at 512 px. The
mini base's 64 px VAE keeps about a tenth of the real renders' Laplacian variance, so that limit
would reject an ideal generator too. :func:`decoder_matched_factor` scales the factor by the
measured ratio, which keeps the check's meaning: reject images far softer than this decoder's
own reconstructions of real images.

With ``[qc] sharpness_reference = "decoder"`` :func:`matched_config` does this for any set whose
images name the model that made them (generation provenance): the ratio is measured once per
model (by its weights hash) on the first real training images and cached in the workspace.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from craftlora.catalog.store import ImageRecord
from craftlora.catalog.workspace import Workspace
from craftlora.config import QCConfig
from craftlora.data.atomic import atomic_write_json
from craftlora.metrics.sets import load_images
from craftlora.models.loader import load_components
from craftlora.models.roundtrip import roundtrip_images
from craftlora.qc.checks import QCError
from craftlora.qc.measure import measure

#: real training images the round trip is measured on
DECODER_IMAGES = 128


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


def decoder_ratio(ws: Workspace, model: str, model_hash: str, analysis_size: int,
                  n: int = DECODER_IMAGES) -> dict[str, Any]:
    """:func:`roundtrip_sharpness` of ``model`` on the first ``n`` real training images,
    measured once per (model weights, images, analysis size) and cached in the workspace."""
    recs = ws.catalog.images(origin="real", split="train")[:n] or \
        ws.catalog.images(origin="real")[:n]
    if not recs:
        raise QCError(f"{ws.root}: no real images to measure the decoder's sharpness on")
    key = hashlib.sha256(json.dumps([model_hash, [r.sha256 for r in recs], analysis_size])
                         .encode()).hexdigest()[:16]
    path = ws.root / "cache" / "qc-decoder" / f"{key}.json"
    if path.is_file():
        return {**json.loads(path.read_text(encoding="utf-8")), "cached": True}
    _, real, errors = load_images(ws, recs)
    res = {**roundtrip_sharpness(load_components(model).vae, real,
                                 analysis_size=analysis_size),
           "model": model, "model_hash": model_hash, "skipped": errors}
    atomic_write_json(path, res)
    return {**res, "cached": False}


def matched_config(ws: Workspace, records: Sequence[ImageRecord], cfg: QCConfig
                   ) -> tuple[QCConfig, dict[str, Any]]:
    """``cfg`` with its sharpness factor matched to the decoder that made ``records``.

    Images that name no model (real photos, true renders) keep the configured limit.
    """
    makers = {(r.provenance.get("model"), r.provenance.get("model_hash")) for r in records
              if r.provenance.get("model_hash")}
    if not makers:
        return cfg, {"decoder_matched": False, "factor": cfg.sharpness_factor,
                     "reason": "no image of the set names the model that made it"}
    if len(makers) > 1:
        raise QCError(f"the set holds images of {len(makers)} models; with "
                      "sharpness_reference = 'decoder' check one model's images per set")
    model, model_hash = makers.pop()
    dec = decoder_ratio(ws, str(model), str(model_hash), cfg.analysis_size)
    factor = decoder_matched_factor(cfg.sharpness_factor, dec["ratio"])
    return (cfg.model_copy(update={"sharpness_factor": factor}),
            {"decoder_matched": True, "factor": factor, "decoder": dec})
