"""Glaze and decoration: per-pixel albedo of a vessel from its glaze, kiln and dynasty.

Everything works on flat arrays of the vessel's pixels, in surface coordinates ``a`` (angle
around the vessel, or around the interior) and ``s`` (down the body, or out from the interior
centre), so patterns wrap around the form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Glaze:
    colour: tuple[float, float, float]
    gloss: float  # specular strength and sharpness
    opacity: float  # 1 hides carving and incising
    pool: tuple[float, float, float] | None = None  # colour where the glaze runs thick


GLAZES: dict[str, Glaze] = {
    "white": Glaze((0.92, 0.92, 0.90), 0.9, 0.6),
    "ivory white": Glaze((0.94, 0.895, 0.80), 0.9, 0.55, (0.86, 0.78, 0.60)),
    "moon white": Glaze((0.80, 0.85, 0.87), 0.35, 0.95, (0.70, 0.77, 0.82)),
    "celadon": Glaze((0.66, 0.80, 0.70), 0.8, 0.35, (0.44, 0.62, 0.50)),
    "black": Glaze((0.09, 0.07, 0.06), 1.0, 1.0),
    "brown": Glaze((0.42, 0.25, 0.13), 0.7, 1.0),
    "sky blue": Glaze((0.55, 0.68, 0.85), 0.5, 0.95, (0.45, 0.58, 0.78)),
    "qingbai": Glaze((0.82, 0.90, 0.90), 1.0, 0.2, (0.52, 0.74, 0.72)),
}

# Kiln-specific tones of a glaze (Yaozhou olive celadon, Guan grey celadon, Cizhou slip white).
GLAZE_TONES: dict[tuple[str, str], tuple[float, float, float]] = {
    ("Yaozhou", "celadon"): (0.60, 0.70, 0.50),
    ("Guan", "celadon"): (0.68, 0.77, 0.70),
    ("Cizhou", "white"): (0.91, 0.89, 0.83),
}


@dataclass(frozen=True)
class Kiln:
    body: tuple[float, float, float]  # unglazed foot / body colour
    techniques: dict[str, float]  # decoration technique -> probability
    crackle: float = 0.0  # probability of a strong crackle network


KILNS: dict[str, Kiln] = {
    "Ding": Kiln((0.90, 0.87, 0.80), {"incised": 0.4, "printed": 0.3}),
    "Jun": Kiln((0.62, 0.52, 0.38), {}),
    "Longquan": Kiln((0.78, 0.42, 0.24), {"carved": 0.6}),
    "Jingdezhen": Kiln((0.93, 0.90, 0.86), {"incised": 0.6}),
    "Cizhou": Kiln((0.70, 0.65, 0.55), {"painted": 0.8}),
    "Jian": Kiln((0.22, 0.16, 0.12), {}),
    "Guan": Kiln((0.26, 0.21, 0.19), {}, crackle=1.0),
    "Yaozhou": Kiln((0.62, 0.55, 0.45), {"carved": 0.55, "printed": 0.3}),
}

YUAN_TECHNIQUES: dict[str, dict[str, float]] = {
    "Jingdezhen": {"painted": 0.8, "incised": 0.1},
}


def pick_technique(kiln: str, dynasty: str, rng: np.random.Generator) -> str:
    """Decoration technique or "none": Yuan wares are decorated more often than Song ones."""
    table = KILNS[kiln].techniques
    if dynasty == "Yuan":
        table = YUAN_TECHNIQUES.get(kiln, table)
    boost = 1.2 if dynasty == "Yuan" else 0.8
    u = rng.uniform()
    acc = 0.0
    for name, p in table.items():
        acc += p * boost
        if u < acc:
            return name
    return "none"


def glaze_albedo(
    glaze: str, kiln: str, rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel base glaze colour (n×3) with per-piece jitter, and the pooling colour."""
    g = GLAZES[glaze]
    base = np.array(GLAZE_TONES.get((kiln, glaze), g.colour), dtype=np.float32)
    base = base * rng.uniform(0.97, 1.03) + rng.uniform(-0.02, 0.02, 3).astype(np.float32)
    pool = np.array(g.pool if g.pool else base * 0.8, dtype=np.float32)
    return np.broadcast_to(base, (n, 3)).copy(), pool


def crackle(a: np.ndarray, s: np.ndarray, rng: np.random.Generator, cells: int, width: float):
    """A Voronoi crackle network: 1 on cell borders, 0 inside cells."""
    k = cells * cells
    seeds = rng.uniform(0, 1, size=(k, 2)).astype(np.float32)
    pa = (a / np.pi + 0.5)[:, None] * cells
    ps = s[:, None] * cells
    d = (pa - seeds[:, 0] * cells) ** 2 + (ps - seeds[:, 1] * cells) ** 2
    d.partition(1, axis=1)
    gap = np.sqrt(d[:, 1]) - np.sqrt(d[:, 0])
    return np.clip(1.0 - gap / width, 0.0, 1.0)


def streaks(a: np.ndarray, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hare's-fur streaks: fine vertical bands, strongest near the rim."""
    bins = rng.uniform(0, 1, size=72).astype(np.float32)
    x = (a / np.pi + 0.5) * 71
    band = np.interp(x, np.arange(72), bins)
    fade = np.clip(1.2 - s * 1.1, 0, 1)
    return np.clip((band - 0.45) * 2.5, 0, 1) * fade


def speckle(n: int, rng: np.random.Generator, density: float) -> np.ndarray:
    return (rng.uniform(0, 1, size=n) < density).astype(np.float32)


def blob(a: np.ndarray, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft splash (Jun purple) at a random place on the surface."""
    ca, cs = rng.uniform(-0.8, 0.8), rng.uniform(0.15, 0.6)
    ra, rs = rng.uniform(0.3, 0.7), rng.uniform(0.12, 0.3)
    d = ((a - ca) / ra) ** 2 + ((s - cs) / rs) ** 2
    return np.clip(1.2 - d, 0, 1)


def decoration(
    technique: str, a: np.ndarray, s: np.ndarray, rng: np.random.Generator, dense: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(line mask, relief in [-1, 1]) of a decoration technique in surface coordinates."""
    zero = np.zeros_like(a)
    if technique == "none":
        return zero, zero
    k = 1.6 if dense else 1.0
    top, bottom = (0.12, 0.85) if dense else (rng.uniform(0.2, 0.35), rng.uniform(0.6, 0.8))
    zone = ((s > top) & (s < bottom)).astype(np.float32)
    ph = rng.uniform(0, 2 * np.pi)
    if technique == "incised":
        wave = np.sin(a * 5 * k + 2.2 * np.sin(s * 9 * k + ph))
        return (np.abs(wave) < 0.22).astype(np.float32) * zone, zero
    if technique == "carved":
        n_petals = int(round(7 * k))
        q = (a / np.pi + 0.5) * n_petals + ph
        frac = q - np.floor(q)
        z = np.clip((s - top) / (bottom - top), 0, 1)
        edge = (np.abs(frac - 0.5) > 0.5 - 0.08 - 0.25 * (1 - z)) * zone
        relief = np.cos(2 * np.pi * frac) * zone
        return edge.astype(np.float32), relief.astype(np.float32)
    if technique == "printed":
        dots = np.sin(a * 14 * k + ph) * np.sin(s * 40 * k)
        return (dots > 0.55).astype(np.float32) * zone, (dots * 0.5) * zone
    if technique == "painted":
        bands = (np.abs(s - top) < 0.035) | (np.abs(s - bottom) < 0.035)
        if dense:
            bands |= np.abs(s - (top + bottom) / 2) < 0.025
        leaf = np.sin(a * 3 * k + ph) * np.sin((s - top) / (bottom - top) * np.pi * k)
        leaf = (leaf > 0.5) | (np.abs(np.sin(a * 6 * k + 3 * s)) < 0.12)
        return ((bands | leaf) & (zone > 0)).astype(np.float32), zero
    raise ValueError(f"unknown decoration technique {technique!r}")


PAINT = {"Cizhou": (0.12, 0.08, 0.06), "Jingdezhen": (0.14, 0.22, 0.56)}
