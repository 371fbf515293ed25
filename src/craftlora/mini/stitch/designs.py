"""Flat designs: a motif filled with one or two colours on a plain ground, with its exact mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from craftlora.mini.canvas import grid, hsv

MOTIFS = ("circle", "star", "diamond", "heart", "vase", "cross", "moon", "leaf")
HELD_OUT_MOTIFS = frozenset({"moon", "leaf"})
COLOURS = {"red": 0.0, "orange": 0.08, "yellow": 0.15, "green": 0.33, "teal": 0.5,
           "blue": 0.62, "purple": 0.76, "pink": 0.9}


@dataclass(frozen=True)
class Design:
    motif: str
    colour: str
    rgb: np.ndarray  # fill colour
    accent: np.ndarray  # second colour (inner band)
    ground: np.ndarray  # background colour
    mask: np.ndarray  # bool, n×n (supersampled), the motif
    inner: np.ndarray  # bool, n×n, the accent region inside the motif

    @property
    def caption(self) -> str:
        return f"a {self.colour} {self.motif}"


def _shape(motif: str, n: int, cx: float, cy: float, r: float) -> np.ndarray:
    y, x = grid(n)
    u, v = (x - cx) / r, (y - cy) / r
    if motif == "circle":
        return u**2 + v**2 <= 1
    if motif == "diamond":
        return np.abs(u) + np.abs(v) <= 1.1
    if motif == "cross":
        return ((np.abs(u) < 0.35) & (np.abs(v) < 1)) | ((np.abs(v) < 0.35) & (np.abs(u) < 1))
    if motif == "star":
        ang = np.arctan2(v, u)
        return np.hypot(u, v) <= 0.55 + 0.45 * np.cos(5 * ang) ** 2
    if motif == "heart":
        a, b = u * 1.1, -v * 1.1 + 0.3
        return (a**2 + b**2 - 1) ** 3 - a**2 * b**3 <= 0
    if motif == "vase":
        half = 0.35 + 0.45 * np.sin(np.clip((v + 1) / 2, 0, 1) * np.pi) ** 2
        return (np.abs(v) < 1) & (np.abs(u) < half)
    if motif == "moon":
        return (u**2 + v**2 <= 1) & ((u - 0.45) ** 2 + (v + 0.1) ** 2 > 0.6)
    if motif == "leaf":
        return (np.abs(u) < 1) & (np.abs(v) < 0.55 * np.clip(1 - u**2, 0, 1) ** 0.8)
    raise ValueError(f"unknown motif {motif!r}")


def make_design(motif: str, colour: str, n: int, rng: np.random.Generator) -> Design:
    """A jittered motif (centre, size) in a named colour with a pale or dark plain ground."""
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}")
    cx, cy = n / 2 + rng.uniform(-0.06, 0.06) * n, n / 2 + rng.uniform(-0.06, 0.06) * n
    r = n * rng.uniform(0.30, 0.38)
    mask = _shape(motif, n, cx, cy, r)
    inner = mask & _shape(motif, n, cx, cy, r * 0.5)
    h = COLOURS[colour] + rng.uniform(-0.02, 0.02)
    rgb = hsv(h, rng.uniform(0.65, 0.85), rng.uniform(0.65, 0.85))
    accent = hsv(h + rng.choice([-0.12, 0.12]), rng.uniform(0.5, 0.8), rng.uniform(0.5, 0.9))
    ground = hsv(rng.uniform(), rng.uniform(0.0, 0.15), rng.uniform(0.85, 0.95))
    return Design(motif, colour, rgb, accent, ground, mask, inner)


def flat(d: Design) -> np.ndarray:
    """The vector-art rendering: uniform colour blocks."""
    img = np.broadcast_to(d.ground, d.mask.shape + (3,)).copy()
    img[d.mask] = d.rgb
    img[d.inner] = d.accent
    return img.astype(np.float32)
