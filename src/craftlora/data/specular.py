"""Specular highlight reduction for glossy craft objects (lacquer, glaze): I · (1 − α · M_spec).

The mask estimator marks pixels that are both bright and unsaturated — a highlight reflects the
light source's colour, not the object's — softly, then smooths the mask:

    M_spec = G_σ * [ clip((V − v0) / (1 − v0), 0, 1) · clip((s0 − S) / s0, 0, 1) ]

on HSV in [0, 1], with v0 = 0.85, s0 = 0.25, σ = 2 px and α = 0.7 by default (the HITL-Lacquer
study names α; the mask formula is our choice, as its paper does not give one).
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field


class SpecularConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(default=0.7, ge=0.0, le=1.0, description="attenuation strength α")
    v0: float = Field(default=0.85, ge=0.0, lt=1.0, description="value where highlights start")
    s0: float = Field(default=0.25, gt=0.0, le=1.0, description="saturation where they end")
    sigma: float = Field(default=2.0, ge=0.0, description="Gaussian smoothing of the mask, px")


def _rgb01(img: Image.Image | np.ndarray) -> np.ndarray:
    a = np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an RGB image or uint8 HxWx3 array, got {a.dtype} {a.shape}")
    return a.astype(np.float32) / 255.0


def specular_mask(img: Image.Image | np.ndarray, cfg: SpecularConfig | None = None
                  ) -> np.ndarray:
    """M_spec in [0, 1], float32 HxW."""
    cfg = cfg or SpecularConfig()
    rgb = _rgb01(img)
    v = rgb.max(axis=2)
    s = np.where(v > 0, (v - rgb.min(axis=2)) / np.maximum(v, 1e-8), 0.0)
    raw = (np.clip((v - cfg.v0) / (1.0 - cfg.v0), 0, 1)
           * np.clip((cfg.s0 - s) / cfg.s0, 0, 1)).astype(np.float32)
    if cfg.sigma > 0:
        raw = cv2.GaussianBlur(raw, (0, 0), sigmaX=cfg.sigma, sigmaY=cfg.sigma,
                               borderType=cv2.BORDER_REFLECT)
    return np.clip(raw, 0.0, 1.0)


def reduce_specular(img: Image.Image | np.ndarray, cfg: SpecularConfig | None = None
                    ) -> Image.Image:
    """I_corr = I · (1 − α · M_spec) as an 8-bit RGB image."""
    cfg = cfg or SpecularConfig()
    m = specular_mask(img, cfg)
    out = _rgb01(img) * 255.0 * (1.0 - cfg.alpha * m)[:, :, None]
    return Image.fromarray(np.clip(out.round(), 0, 255).astype(np.uint8))


def example_figure(images: list[Image.Image], path: str, cfg: SpecularConfig | None = None
                   ) -> None:
    """Rows of original | M_spec | corrected, saved as a PNG figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = cfg or SpecularConfig()
    fig, axes = plt.subplots(len(images), 3, figsize=(9, 3 * len(images)), squeeze=False)
    for row, im in zip(axes, images, strict=True):
        m = specular_mask(im, cfg)
        panels = [(im, "original"), (m, f"M_spec (mean {m.mean():.3f})"),
                  (reduce_specular(im, cfg), f"I·(1 − {cfg.alpha}·M_spec)")]
        for ax, (p, title) in zip(row, panels, strict=True):
            ax.imshow(p, cmap="magma" if isinstance(p, np.ndarray) else None, vmin=0, vmax=1)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def mask_iou(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> float | None:
    """IoU of two masks in [0, 1], each binarised at ``threshold``; None when both are empty."""
    if pred.shape != truth.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {truth.shape}")
    a, b = pred >= threshold, truth >= threshold
    union = int((a | b).sum())
    return None if union == 0 else float((a & b).sum()) / union


def soft_iou(pred: np.ndarray, truth: np.ndarray) -> float | None:
    """Fuzzy Jaccard Σ min / Σ max of two masks in [0, 1]; None when both are empty."""
    if pred.shape != truth.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {truth.shape}")
    union = float(np.maximum(pred, truth).sum())
    return None if union == 0 else float(np.minimum(pred, truth).sum()) / union


def highlight_area(img: Image.Image | np.ndarray, cfg: SpecularConfig | None = None,
                   threshold: float = 0.5) -> float:
    """The share of pixels the mask estimator calls highlight (M_spec ≥ ``threshold``)."""
    return float((specular_mask(img, cfg) >= threshold).mean())


def restore_error(restored: Image.Image | np.ndarray, clean: Image.Image | np.ndarray,
                  where: np.ndarray | None = None) -> float:
    """Mean absolute error in [0, 1] between two RGB images, over ``where`` (bool HxW) if given."""
    d = np.abs(_rgb01(restored) - _rgb01(clean)).mean(axis=2)
    if where is not None:
        return float(d[where].mean()) if where.any() else 0.0
    return float(d.mean())
