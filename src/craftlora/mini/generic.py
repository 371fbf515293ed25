"""The generic world: everyday procedural scenes with plain-English captions.

Simple objects (balls, cubes, stars ...) in a colour, on a textured floor, under a named light:
"a red ball on a striped teal floor under warm light". It shares no vocabulary with the
mini-kiln world (no kiln, glaze or vessel-type words, no white/black/brown) and never calls the
vessel drawing code, so a LoRA trained on vessels has a real domain gap to close.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from craftlora.data.atomic import atomic_write_bytes, atomic_write_json
from craftlora.mini import canvas
from craftlora.runtime.workers import map_chunks

OBJECTS = ["ball", "cube", "pyramid", "ring", "star", "heart", "cross", "arrow"]
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.15, 0.12), "orange": (0.95, 0.55, 0.12), "yellow": (0.95, 0.85, 0.2),
    "green": (0.25, 0.7, 0.25), "blue": (0.2, 0.35, 0.85), "purple": (0.55, 0.25, 0.7),
    "pink": (0.95, 0.55, 0.7), "grey": (0.55, 0.55, 0.55), "teal": (0.15, 0.6, 0.6),
}
FLOORS = ["plain", "striped", "checked", "dotted"]
LIGHTS: dict[str, tuple[float, float, float]] = {
    "warm": (1.1, 0.98, 0.8), "cool": (0.82, 0.96, 1.12),
    "bright": (1.12, 1.12, 1.12), "dim": (0.6, 0.6, 0.62),
}
LABELS = ("object", "colour", "floor", "light")


def _poly(x: np.ndarray, y: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test for every pixel."""
    inside = np.zeros(x.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        crosses = (y0 > y) != (y1 > y)
        xi = x0 + (y - y0) * (x1 - x0) / ((y1 - y0) or 1e-9)
        inside ^= crosses & (x < xi)
    return inside


def _rot(pts: np.ndarray, th: float, cx: float, cy: float) -> np.ndarray:
    c, s = np.cos(th), np.sin(th)
    return np.stack([cx + c * pts[:, 0] - s * pts[:, 1], cy + s * pts[:, 0] + c * pts[:, 1]], 1)


def _shape(kind: str, x, y, cx, cy, r, th, light) -> tuple[np.ndarray, np.ndarray]:
    """(mask, brightness) of one object centred at (cx, cy) with size r."""
    dx, dy = (x - cx) / r, (y - cy) / r
    flat = 0.75 + 0.25 * np.clip(-(dx * light[0] + dy * light[1]), -1, 1)
    if kind == "ball":
        d2 = dx**2 + dy**2
        nz = np.sqrt(np.clip(1 - d2, 0, 1))
        lam = np.clip(dx * light[0] + dy * light[1] + nz * light[2], 0, 1)
        return d2 <= 1, 0.3 + 0.7 * lam + 0.5 * lam**30
    if kind == "cube":
        a, d = 0.7, 0.35
        front = (np.abs(dx + 0.1) <= a) & (np.abs(dy - 0.1) <= a)
        top = _poly(dx, dy, np.array([[-a - 0.1, -a + 0.1], [a - 0.1, -a + 0.1],
                                      [a - 0.1 + d, -a + 0.1 - d], [-a - 0.1 + d, -a + 0.1 - d]]))
        side = _poly(dx, dy, np.array([[a - 0.1, -a + 0.1], [a - 0.1 + d, -a + 0.1 - d],
                                       [a - 0.1 + d, a + 0.1 - d], [a - 0.1, a + 0.1]]))
        b = np.where(top, 1.0 - 0.3 * light[1], np.where(side, 0.6 + 0.4 * light[0], 0.8))
        return front | top | side, b
    if kind == "pyramid":
        left = _poly(dx, dy, np.array([[0, -1], [-1, 0.7], [0.2, 1.0]]))
        right = _poly(dx, dy, np.array([[0, -1], [0.2, 1.0], [1, 0.6]]))
        return left | right, np.where(left, 0.75 - 0.25 * light[0], 0.75 + 0.25 * light[0])
    if kind == "ring":
        d = np.sqrt(dx**2 + (dy / 0.8) ** 2)
        band = (d > 0.55) & (d < 1.0)
        prof = np.cos((d - 0.775) / 0.225 * np.pi / 2)
        return band, 0.45 + 0.55 * prof * flat
    if kind == "star":
        ang = th - np.pi / 2 + np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        pts = np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
        return _poly(dx, dy, pts), flat
    if kind == "heart":
        c1 = (dx + 0.42) ** 2 + (dy + 0.3) ** 2 <= 0.45**2
        c2 = (dx - 0.42) ** 2 + (dy + 0.3) ** 2 <= 0.45**2
        tri = _poly(dx, dy, np.array([[-0.86, -0.15], [0.86, -0.15], [0, 0.95]]))
        return c1 | c2 | tri, flat
    if kind == "cross":
        pts = np.array([[-0.3, -1], [0.3, -1], [0.3, -0.3], [1, -0.3], [1, 0.3], [0.3, 0.3],
                        [0.3, 1], [-0.3, 1], [-0.3, 0.3], [-1, 0.3], [-1, -0.3], [-0.3, -0.3]])
        return _poly(x, y, _rot(pts * r, th, cx, cy)), flat
    if kind == "arrow":
        pts = np.array([[-1, -0.22], [0.2, -0.22], [0.2, -0.6], [1, 0], [0.2, 0.6],
                        [0.2, 0.22], [-1, 0.22]])
        return _poly(x, y, _rot(pts * r, th, cx, cy)), flat
    raise ValueError(f"unknown object {kind!r}")


def _floor(rng: np.random.Generator, n: int, horizon: float, texture: str, colour):
    y, x = canvas.grid(n)
    base = np.array(colour, np.float32) * rng.uniform(0.8, 1.0)
    f = rng.uniform(3, 6) / n * 2 * np.pi
    if texture == "striped":
        pat = np.sin(x * f) > 0
    elif texture == "checked":
        pat = (np.sin(x * f) > 0) ^ (np.sin((y - horizon) * f * 1.5) > 0)
    elif texture == "dotted":
        pat = (np.sin(x * f * 1.5) * np.sin(y * f * 1.5)) > 0.7
    else:
        pat = np.zeros_like(x, dtype=bool)
    tone = np.where(pat, 0.6, 1.0)[..., None]
    return base * tone


def render_generic_scene(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, dict]:
    """One generic scene (uint8 image) and its labels and caption."""
    n = size * canvas.SUPERSAMPLE
    y, x = canvas.grid(n)
    count = 2 if rng.uniform() < 0.2 else 1
    kinds = [OBJECTS[i] for i in rng.integers(len(OBJECTS), size=count)]
    names = list(COLOURS)
    cols = [names[i] for i in rng.choice(len(names), size=count + 1, replace=False)]
    floor_col = cols.pop()
    texture = FLOORS[rng.integers(len(FLOORS))]
    light_name = list(LIGHTS)[rng.integers(len(LIGHTS))]
    light = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.8, -0.2), rng.uniform(0.4, 1.0)])
    light /= np.linalg.norm(light)

    horizon = rng.uniform(0.4, 0.65) * n
    wall = canvas.random_colour(rng, s_max=0.35)
    img = np.where((y < horizon)[..., None], wall * (0.9 + 0.2 * y / n)[..., None],
                   _floor(rng, n, horizon, texture, COLOURS[floor_col]))
    img = img.astype(np.float32)
    slots = [rng.uniform(0.35, 0.65)] if count == 1 else [rng.uniform(0.22, 0.3),
                                                          rng.uniform(0.7, 0.78)]
    for kind, col, sx in zip(kinds, cols, slots, strict=True):
        r = rng.uniform(0.22, 0.3) * n if count == 1 else rng.uniform(0.16, 0.2) * n
        cx = sx * n
        cy = min(n - r * 1.05, horizon + rng.uniform(0.0, 0.2) * (n - horizon))
        shadow = canvas.soft_ellipse(n, cx - light[0] * r * 0.8, cy + r * 0.9, r * 1.1, r * 0.3)
        img *= (1 - 0.4 * shadow)[..., None]
        mask, bright = _shape(kind, x, y, cx, cy, r, rng.uniform(-0.5, 0.5), light)
        rgb = np.array(COLOURS[col], np.float32) * rng.uniform(0.9, 1.05)
        img = np.where(mask[..., None], rgb * np.asarray(bright, np.float32)[..., None], img)
    gain = np.array(LIGHTS[light_name], np.float32) * rng.uniform(0.92, 1.05)
    out = canvas.finish(img.astype(np.float32), rng, gain)
    things = [f"{_a(c)} {c} {k}" for k, c in zip(kinds, cols, strict=True)]
    caption = f"{' and '.join(things)} on {_a(texture)} {texture} {floor_col} floor under "
    caption += f"{light_name} light"
    labels = {"object": kinds[0], "colour": cols[0], "floor": texture, "light": light_name}
    return out, {"caption": caption, **labels}


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _file_name(i: int) -> str:
    return f"gw{i:05d}.png"


def _render_chunk(idx: Sequence[int], out: Path, seed: int, size: int) -> list[dict[str, Any]]:
    rows = []
    for i in idx:
        img, meta = render_generic_scene(np.random.default_rng([seed, i, 1]), size)
        name = _file_name(i)
        canvas.write_file(out / name, canvas.png_bytes(img))
        canvas.write_file(out / (Path(name).stem + ".txt"), (meta["caption"] + "\n").encode())
        rows.append({"file": name, **meta})
    return rows


def render_generic(
    out: Path, *, n: int, seed: int = 0, size: int = 64, workers: int | None = None,
    progress: bool = False,
) -> Path:
    """Render ``n`` generic scenes into ``out``; returns the path of captions.csv.

    Writes PNGs, a same-name ``.txt`` caption per image (kohya style), ``captions.csv``
    (file, caption) and ``labels.csv`` (file, object, colour, floor, light) for contact sheets.
    """
    if size < 16 or size % 2:
        raise ValueError("size must be an even number >= 16")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    job = partial(_render_chunk, out=out, seed=seed, size=size)
    rows = map_chunks(job, list(range(n)), workers=workers, desc="generic",
                            progress=progress)
    cap, lab = io.StringIO(), io.StringIO()
    wc, wl = csv.writer(cap, lineterminator="\n"), csv.writer(lab, lineterminator="\n")
    wc.writerow(["file", "caption"])
    wl.writerow(["file", *LABELS])
    for r in rows:
        wc.writerow([r["file"], r["caption"]])
        wl.writerow([r["file"], *(r[k] for k in LABELS)])
    atomic_write_bytes(out / "labels.csv", lab.getvalue().encode())
    captions = out / "captions.csv"
    atomic_write_bytes(captions, cap.getvalue().encode())
    atomic_write_json(out / "world.json", {"world": "generic", "seed": seed, "size": size,
                                           "images": n})
    return captions
