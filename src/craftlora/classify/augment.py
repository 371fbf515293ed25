"""The study's training augmentations, applied to a whole uint8 batch at once on tensors.

RandomResizedCrop (scale 0.8–1.0, ratio 3/4–4/3), horizontal flip, rotation ±15°, translation
±10 % are composed into one affine map per sample and applied with a single ``grid_sample``
(zero fill, as torchvision); then ColorJitter (brightness, contrast, saturation 0.2, hue 0.1)
with independent factors per sample; then ImageNet normalisation. Every parameter is drawn
from the given ``torch.Generator``, so a seed fixes the augmentations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field


class AugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    crop_scale: tuple[float, float] = (0.8, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    rotation: float = Field(default=15.0, ge=0, description="degrees, ±")
    translate: float = Field(default=0.1, ge=0, le=1, description="fraction of the size, ±")
    brightness: float = Field(default=0.2, ge=0)
    contrast: float = Field(default=0.2, ge=0)
    saturation: float = Field(default=0.2, ge=0)
    hue: float = Field(default=0.1, ge=0, le=0.5)


def _u(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def geometric(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Random resized crop + flip + rotation + translation of a float batch (N, 3, H, W)."""
    n = x.shape[0]
    area = _u(n, *cfg.crop_scale, g)
    log_r = _u(n, math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1]), g)
    ratio = torch.exp(log_r)
    w = torch.sqrt(area * ratio).clamp(max=1.0)  # crop width as a fraction of the image
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = _u(n, -1.0, 1.0, g) * (1.0 - w)
    cy = _u(n, -1.0, 1.0, g) * (1.0 - h)
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(n)
    ang = _u(n, -cfg.rotation, cfg.rotation, g) * math.pi / 180.0
    tx = _u(n, -cfg.translate, cfg.translate, g) * 2.0
    ty = _u(n, -cfg.translate, cfg.translate, g) * 2.0
    cos, sin = torch.cos(ang), torch.sin(ang)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos * w * flip
    theta[:, 0, 1] = -sin * h
    theta[:, 1, 0] = sin * w * flip
    theta[:, 1, 1] = cos * h
    theta[:, 0, 2] = cx - tx
    theta[:, 1, 2] = cy - ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


_GRAY = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_FROM_YIQ = torch.linalg.inv(_TO_YIQ)


def colour(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Per-sample brightness, contrast, saturation and hue jitter of a [0, 1] batch."""
    n = x.shape[0]

    def factor(s: float) -> torch.Tensor:
        return _u(n, max(0.0, 1 - s), 1 + s, g).view(n, 1, 1, 1)

    x = (x * factor(cfg.brightness)).clamp(0, 1)
    mean = (x * _GRAY).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    x = ((x - mean) * factor(cfg.contrast) + mean).clamp(0, 1)
    gray = (x * _GRAY).sum(1, keepdim=True)
    x = ((x - gray) * factor(cfg.saturation) + gray).clamp(0, 1)
    if cfg.hue > 0:
        ang = _u(n, -cfg.hue, cfg.hue, g) * 2 * math.pi
        cos, sin = torch.cos(ang), torch.sin(ang)
        rot = torch.zeros(n, 3, 3)
        rot[:, 0, 0] = 1.0
        rot[:, 1, 1], rot[:, 1, 2] = cos, -sin
        rot[:, 2, 1], rot[:, 2, 2] = sin, cos
        m = _FROM_YIQ @ rot @ _TO_YIQ  # (n, 3, 3): rotate chroma in YIQ space
        x = torch.einsum("nij,njhw->nihw", m, x).clamp(0, 1)
    return x


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator,
                  mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N, 3, H, W) → augmented, normalised float batch."""
    f = x.float() / 255.0
    if cfg.enabled:
        f = colour(geometric(f, cfg, g), cfg, g)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (f - m) / s
