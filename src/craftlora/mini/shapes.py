"""Vessel silhouettes: a revolved profile per type, with dynasty proportions and jitter.

A profile is the half-width r(t) (max ≈ 1) along the height t ∈ [0, 1] (0 = rim, 1 = base),
plus the height/width ratio, the foot height and any attachments (spout, handle, lugs, stem).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPEN_TYPES = frozenset({"bowl", "tea bowl", "dish", "plate", "washer", "cup"})

_T = np.linspace(0.0, 1.0, 97, dtype=np.float32)

# (height / width, foot height fraction) per type before jitter.
# Open forms are told apart mostly by depth, so their depths are spread apart: a deep round
# bowl, a conical tea bowl, a shallow curved dish, a flat plate with a flange, a straight-walled
# washer with a flat base and a deep narrow cup.
_BASE = {
    "bowl": (0.53, 0.10), "tea bowl": (0.40, 0.10), "dish": (0.27, 0.10),
    "plate": (0.12, 0.12), "washer": (0.22, 0.08), "cup": (0.76, 0.10),
    "vase": (1.55, 0.04), "meiping": (1.65, 0.04), "pot": (1.08, 0.05), "jar": (0.88, 0.05),
}


@dataclass(frozen=True)
class Profile:
    kind: str
    radius: np.ndarray  # r at _T, float32, max 1
    aspect: float  # height / max width
    foot: float  # foot-ring height as a fraction of the height
    spout: bool = False
    handle: bool = False
    lugs: bool = False

    @property
    def is_open(self) -> bool:
        return self.kind in OPEN_TYPES

    def r(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, _T, self.radius, left=0.0, right=0.0).astype(np.float32)

    def slope(self, t: np.ndarray) -> np.ndarray:
        """dr/dt of the profile (finite differences, interpolated)."""
        return np.interp(t, _T, np.gradient(self.radius, _T), left=0.0, right=0.0)


def _pts(points: list[tuple[float, float]]) -> np.ndarray:
    ts, rs = zip(*points, strict=True)
    r = np.interp(_T, ts, rs)
    k = np.array([0.25, 0.5, 0.25])
    r = np.convolve(np.pad(r, 1, mode="edge"), k, mode="valid")
    return (r / r.max()).astype(np.float32)


def _body(kind: str, tb: float, rng: np.random.Generator, yuan: bool) -> list[tuple[float, float]]:
    """Control points of the body (t ≤ tb) for a type; the foot ring is added after."""
    j = rng.uniform
    if kind == "bowl":
        rf = j(0.34, 0.42)
        return [(tb * s, float(np.sqrt(1 - (1 - rf**2) * s**2))) for s in np.linspace(0, 1, 9)]
    if kind == "tea bowl":
        rf = j(0.26, 0.33)
        lip = j(0.0, 0.04)
        return [(0.0, 1 - lip), (0.05, 1.0)] + [
            (tb * s, 1 - (1 - rf) * s**1.15) for s in np.linspace(0.1, 1, 6)
        ]
    if kind == "dish":
        rf = j(0.48, 0.58)
        return [(tb * s, float(np.sqrt(1 - (1 - rf**2) * s**1.6))) for s in np.linspace(0, 1, 9)]
    if kind == "plate":
        flange = j(0.74, 0.80)
        return [(0.0, 1.0), (0.25, flange + 0.03), (0.4, flange), (tb, j(0.55, 0.62))]
    if kind == "washer":
        return [(0.0, 1.0), (tb * 0.9, 1.0), (tb, j(0.95, 0.98))]
    if kind == "cup":
        return [(0.0, 1.0), (tb * 0.5, j(0.86, 0.92)), (tb, j(0.42, 0.5))]
    if kind == "vase":
        neck = j(0.18, 0.24) * (1.1 if yuan else 1.0)
        return [(0.0, j(0.38, 0.46)), (0.1, neck + 0.05), (0.3, neck), (0.52, 0.62),
                (0.74, 1.0), (0.9, 0.8), (tb, 0.6)]
    if kind == "meiping":
        return [(0.0, 0.2), (0.05, 0.17), (0.09, 0.22), (0.24, 0.96), (0.3, 1.0),
                (0.6, 0.8), (tb, j(0.5, 0.6))]
    if kind == "pot":
        return [(0.0, 0.36), (0.12, 0.33), (0.3, 0.62), (0.62, 1.0), (0.85, 0.88), (tb, 0.65)]
    if kind == "jar":
        return [(0.0, 0.64), (0.08, 0.62), (0.14, 0.82), (0.34, 1.0), (0.7, 0.88), (tb, 0.74)]
    raise ValueError(f"unknown vessel type {kind!r}")


def make_profile(kind: str, dynasty: str, rng: np.random.Generator) -> Profile:
    """A jittered profile: Yuan wares are taller and heavier, with a taller foot."""
    if kind not in _BASE:
        raise ValueError(f"unknown vessel type {kind!r}")
    yuan = dynasty == "Yuan"
    aspect, foot = _BASE[kind]
    aspect *= rng.uniform(0.94, 1.06) * (1.08 if yuan else 0.97)
    foot *= rng.uniform(0.8, 1.2) * (1.45 if yuan else 1.0)
    stem = kind == "cup" and rng.uniform() < (0.6 if yuan else 0.2)
    if stem:
        foot = 0.34
        aspect *= 1.45
    tb = 1.0 - foot
    pts = _body(kind, tb, rng, yuan)
    r_base = pts[-1][1]
    if stem:
        pts += [(tb + 0.03, 0.2), (0.9, 0.22), (1.0, 0.46)]
    elif kind in OPEN_TYPES:
        pts += [(tb + 0.02, r_base * 0.92), (1.0, r_base * 0.9)]
    else:
        pts += [(1.0, r_base * 0.97)]
    radius = _pts(pts)
    if yuan and kind not in OPEN_TYPES:
        radius = np.minimum(1.0, radius * 1.06).astype(np.float32)
    spout = kind == "pot" and rng.uniform() < 0.8
    handle = kind == "pot" and rng.uniform() < 0.55
    lugs = kind == "jar" and rng.uniform() < (0.5 if yuan else 0.2)
    return Profile(kind, radius, float(aspect), float(foot), spout, handle, lugs)
