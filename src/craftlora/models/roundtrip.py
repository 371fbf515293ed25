"""A VAE round trip (encode → latent mean → decode): the sharpest any image made through that
decoder can be. The QC sharpness limit, the ControlNet's outline ceiling and the judge's
decoder-blur augmentation all use it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


@torch.no_grad()
def vae_roundtrip(vae: Any, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """Images in [0, 1] (N, 3, H, W) encoded and decoded by ``vae``; same shape, in [0, 1]."""
    out = []
    for i in range(0, len(images), batch):
        x = images[i : i + batch].to(vae.device, vae.dtype) * 2 - 1
        y = vae.decode(vae.encode(x).latent_dist.mean).sample
        out.append(((y.float().clamp(-1, 1) + 1) / 2).cpu())
    return torch.cat(out) if out else images.clone()


def roundtrip_pixels(vae: Any, pixels: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """uint8 (N, 3, H, W) → their VAE round trips, uint8 (N, 3, H, W)."""
    rec = vae_roundtrip(vae, pixels.float() / 255.0, batch)
    return (rec * 255).round().to(torch.uint8)


def roundtrip_images(vae: Any, images: Sequence[np.ndarray], batch: int = 64) -> list[np.ndarray]:
    """uint8 RGB arrays (H, W, 3), one size → their VAE round trips, same layout."""
    if not len(images):
        return []
    px = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return list(roundtrip_pixels(vae, px, batch).permute(0, 2, 3, 1).numpy())
