"""Low-level raster helpers shared by both mini worlds: grids, backgrounds, light, noise, PNG.

Nothing here knows about vessels; images are float32 RGB arrays in [0, 1] at a supersampled
resolution until ``finish`` downsamples, adds sensor noise and quantises them.
"""

from __future__ import annotations

import colorsys
import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

SUPERSAMPLE = 2

_HUES = [
    (0.04, "red"), (0.10, "orange"), (0.17, "yellow"), (0.30, "green"), (0.45, "green"),
    (0.52, "teal"), (0.62, "blue"), (0.72, "blue"), (0.80, "purple"), (0.92, "pink"),
    (1.01, "red"),
]


@lru_cache(maxsize=8)
def grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) of an n×n raster, read-only float32."""
    c = np.arange(n, dtype=np.float32) + 0.5
    y, x = np.meshgrid(c, c, indexing="ij")
    y.setflags(write=False)
    x.setflags(write=False)
    return y, x


def hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def random_colour(rng: np.random.Generator, s_max: float = 0.5) -> np.ndarray:
    """A background colour: any hue, low-to-mid saturation, dark to pale (overlaps glazes)."""
    return hsv(rng.uniform(), rng.uniform(0.0, s_max), rng.uniform(0.12, 0.95))


def colour_name(rgb: np.ndarray) -> str:
    """A plain-English name for a colour, used in annotations ("pale dusky blue")."""
    h, s, v = colorsys.rgb_to_hsv(*(float(c) for c in np.clip(rgb, 0, 1)))
    tone = "dark " if v < 0.35 else "pale " if v > 0.75 else ""
    if s < 0.12:
        return f"{tone}grey".strip()
    hue = next(name for edge, name in _HUES if h < edge)
    muted = "dusky " if s < 0.3 else ""
    return f"{tone}{muted}{hue}".strip()


def smooth_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a cells×cells random grid, bilinearly enlarged to n×n."""
    g = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1)).astype(np.float32)
    pos = np.linspace(0, cells, n, dtype=np.float32)
    i0 = np.minimum(pos.astype(np.int32), cells - 1)
    f = pos - i0
    rows = g[i0] * (1 - f)[:, None] + g[i0 + 1] * f[:, None]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]


def backdrop(
    rng: np.random.Generator, n: int, horizon: float
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A wall over a floor meeting at row ``horizon``, each with a gradient and faint texture."""
    y, _ = grid(n)
    col = y[:, :1]  # one column: the backdrop varies by row, the texture by pixel
    wall_a, wall_b, floor = (random_colour(rng) for _ in range(3))
    fw = np.clip(col / max(horizon, 1.0), 0, 1)
    wall = wall_a * (1 - fw) + wall_b * fw
    fy = np.clip((col - horizon) / max(n - horizon, 1.0), 0, 1)
    ground = floor * (0.8 + 0.3 * fy)
    rows = np.where(col >= horizon, ground, wall).astype(np.float32)
    tex = (1.0 + 0.05 * smooth_noise(rng, n, 6)).astype(np.float32)
    img = rows[:, None, :] * tex[..., None]
    return img, {"wall": (wall_a + wall_b) / 2, "floor": floor}


def light_colour(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Exposure times a warm/cool and green/magenta tint; returns (rgb gain, warmth in [-1, 1])."""
    warmth = float(rng.uniform(-1.0, 1.0))
    gm = float(rng.uniform(-1.0, 1.0))
    exposure = float(rng.uniform(0.72, 1.12))
    gain = np.array([1 + 0.045 * warmth, 1 + 0.02 * gm, 1 - 0.045 * warmth], dtype=np.float32)
    return gain * exposure, warmth


def soft_ellipse(n: int, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """A soft-edged filled ellipse in [0, 1] (used for cast shadows)."""
    y, x = grid(n)
    d = ((x - cx) / max(rx, 1e-3)) ** 2 + ((y - cy) / max(ry, 1e-3)) ** 2
    return np.clip(1.3 - d, 0.0, 1.0) ** 1.5 / 1.3**1.5


def downsample(a: np.ndarray, k: int = SUPERSAMPLE) -> np.ndarray:
    """Box-filter an (n·k)×(n·k)[×c] array down by k (anti-aliasing)."""
    acc = np.zeros_like(a[::k, ::k], dtype=np.float32)
    for dy in range(k):
        for dx in range(k):
            acc += a[dy::k, dx::k]
    return acc * np.float32(1.0 / (k * k))


def finish(img: np.ndarray, rng: np.random.Generator, gain: np.ndarray) -> np.ndarray:
    """Apply the light gain, downsample, add sensor noise, quantise to uint8."""
    small = downsample(img * gain)
    sigma = rng.uniform(0.004, 0.03)
    small += np.float32(sigma) * rng.standard_normal(small.shape, dtype=np.float32)
    return (np.clip(small, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def png_bytes(arr: np.ndarray) -> bytes:
    """Deterministic PNG encoding (no timestamps or text chunks)."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def write_file(path: Path, data: bytes) -> None:
    """Write via a temp name and rename, so a killed run never leaves half a file."""
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(data)
    tmp.replace(path)
