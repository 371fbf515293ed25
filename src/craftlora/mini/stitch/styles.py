"""Embroidery renderings of a flat design: each style a distinct, exactly known texture.

- ``satin``: long parallel stitches at one angle, with a directional thread sheen.
- ``cross``: X stitches on a square cell grid over a visible linen weave.
- ``beads``: round beads on a grid, each with a specular highlight; the ground shows between.
- ``couching``: a thick twisted cord along the outline and sparse running stitches inside.
"""

from __future__ import annotations

import numpy as np

from craftlora.mini.canvas import grid
from craftlora.mini.stitch.designs import Design

STYLES = ("satin", "cross", "beads", "couching")


def _colour_map(d: Design) -> np.ndarray:
    img = np.broadcast_to(d.ground, d.mask.shape + (3,)).copy()
    img[d.mask] = d.rgb
    img[d.inner] = d.accent
    return img


def _weave(n: int, period: float) -> np.ndarray:
    y, x = grid(n)
    return (0.93 + 0.07 * np.cos(2 * np.pi * x / period) * np.cos(2 * np.pi * y / period))


def satin(d: Design, rng: np.random.Generator, k: int) -> np.ndarray:
    y, x = grid(d.mask.shape[0])
    ang = rng.uniform(0, np.pi)
    along = x * np.cos(ang) + y * np.sin(ang)
    across = -x * np.sin(ang) + y * np.cos(ang)
    phase = (across / (1.5 * k)) % 1.0
    sheen = 0.75 + 0.45 * np.sin(np.pi * phase) ** 2 * (0.8 + 0.2 * np.cos(along / (6 * k)))
    img = _colour_map(d) * _weave(d.mask.shape[0], 2 * k)[..., None]
    img[d.mask] = (_colour_map(d) * sheen[..., None])[d.mask]
    return img


def cross(d: Design, rng: np.random.Generator, k: int) -> np.ndarray:
    n = d.mask.shape[0]
    y, x = grid(n)
    cell = 4 * k
    fx, fy = (x % cell) / cell - 0.5, (y % cell) / cell - 0.5
    on_x = np.minimum(np.abs(fx - fy), np.abs(fx + fy)) < 0.16
    cy = (np.floor(y / cell) * cell + cell / 2).astype(int).clip(0, n - 1)
    cx = (np.floor(x / cell) * cell + cell / 2).astype(int).clip(0, n - 1)
    covered = d.mask[cy, cx] & on_x
    img = np.broadcast_to(d.ground, (n, n, 3)) * _weave(n, k)[..., None]
    colours = _colour_map(d)[cy, cx]
    shade = (0.8 + 0.3 * (1 - np.abs(fx + fy)))[..., None]
    return np.where(covered[..., None], colours * shade, img)


def beads(d: Design, rng: np.random.Generator, k: int) -> np.ndarray:
    n = d.mask.shape[0]
    y, x = grid(n)
    cell = 3 * k
    fx, fy = (x % cell) / cell - 0.5, (y % cell) / cell - 0.5
    rr = fx**2 + fy**2
    cy = (np.floor(y / cell) * cell + cell / 2).astype(int).clip(0, n - 1)
    cx = (np.floor(x / cell) * cell + cell / 2).astype(int).clip(0, n - 1)
    bead = d.mask[cy, cx] & (rr < 0.2)
    hi = np.exp(-((fx + 0.15) ** 2 + (fy + 0.15) ** 2) / 0.01)
    body = _colour_map(d)[cy, cx] * (1.05 - 1.6 * rr)[..., None] + 0.6 * hi[..., None]
    img = np.broadcast_to(d.ground, (n, n, 3)) * 0.9
    return np.where(bead[..., None], body, img)


def couching(d: Design, rng: np.random.Generator, k: int) -> np.ndarray:
    from scipy.ndimage import binary_erosion

    n = d.mask.shape[0]
    y, x = grid(n)
    edge = d.mask & ~binary_erosion(d.mask, iterations=2 * k)
    twist = 0.7 + 0.5 * (np.sin((x + y) * np.pi / (1.5 * k)) > 0)
    img = np.broadcast_to(d.ground, (n, n, 3)) * _weave(n, 2 * k)[..., None]
    inside = d.mask & ~edge & ((np.floor(y / (3 * k)) % 2 == 0) & (x % (4 * k) < 2.5 * k))
    cmap = _colour_map(d)
    img = np.where(inside[..., None], cmap * 0.95, img)
    return np.where(edge[..., None], d.rgb * 0.55 * twist[..., None], img)


RENDER = {"satin": satin, "cross": cross, "beads": beads, "couching": couching}


def embroider(d: Design, style: str, rng: np.random.Generator, k: int) -> np.ndarray:
    """The design in ``style`` (``k`` = supersampling factor, so textures scale with it)."""
    if style not in RENDER:
        raise ValueError(f"unknown stitch style {style!r}; known: {', '.join(STYLES)}")
    return np.clip(RENDER[style](d, rng, k), 0, 1).astype(np.float32)
