"""Render the glossy world: each scene three times from one random draw — with its studio-light
highlights (``images/``, the dataset), without them (``truth/clean/``) and the highlight
coverage itself (``truth/mask/``, 8-bit, 255 = the light's colour replaces the lacquer).

The highlight is composited, so the truth is exact: glossy = clean · (1 − H) + H · light, with
the same sensor noise added to both renders.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np

from craftlora.data.atomic import atomic_write_bytes, atomic_write_json
from craftlora.mini import canvas
from craftlora.mini.glossy.world import ATTRIBUTES, combinations
from craftlora.runtime.workers import map_chunks

LABEL_COLUMNS = ("file", *ATTRIBUTES)


def _rect(n: int, cx: float, cy: float, w: float, h: float, soft: float = 1.0) -> np.ndarray:
    y, x = canvas.grid(n)
    dx = w / 2 - np.abs(x - cx)
    dy = h / 2 - np.abs(y - cy)
    return np.clip(np.minimum(dx, dy) / soft, 0.0, 1.0)


def _object(form: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The object's coverage and its shading (a lid, a rim, a lit upper face)."""
    cx = n * rng.uniform(0.44, 0.56)
    y, _ = canvas.grid(n)
    if form == "box":
        w, h, cy = n * rng.uniform(0.5, 0.62), n * rng.uniform(0.38, 0.46), n * 0.58
        cover = _rect(n, cx, cy, w, h)
        lid = _rect(n, cx, cy - h * 0.32, w, h * 0.36)
        shade = 0.8 + 0.3 * lid
    elif form == "tray":
        w, h, cy = n * rng.uniform(0.66, 0.78), n * rng.uniform(0.26, 0.32), n * 0.66
        cover = _rect(n, cx, cy, w, h, soft=2.0)
        inner = _rect(n, cx, cy, w * 0.82, h * 0.62, soft=2.0)
        shade = 1.05 - 0.3 * inner
    else:  # panel
        w, h, cy = n * rng.uniform(0.4, 0.48), n * rng.uniform(0.7, 0.8), n * 0.5
        cover = _rect(n, cx, cy, w, h)
        shade = 1.1 - 0.25 * np.clip((y - (cy - h / 2)) / h, 0, 1)
    return cover.astype(np.float32), shade.astype(np.float32)


def _decoration(kind: str, n: int, rng: np.random.Generator, albedo: np.ndarray) -> np.ndarray:
    """Carved relief (dark grooves with a lit edge) or inlay (pearl dots and gold lines)."""
    y, x = canvas.grid(n)
    f = rng.uniform(0.25, 0.4) * 64 / n
    phase = rng.uniform(0, 2 * np.pi, 2)
    out = np.broadcast_to(albedo, (n, n, 3)).copy()
    if kind == "carved":
        wave = np.sin(x * f + phase[0]) * np.sin(y * f + phase[1])
        groove = np.clip((wave - 0.35) * 4, 0, 1)[..., None]
        edge = np.clip((0.2 - np.abs(wave - 0.3)) * 6, 0, 1)[..., None]
        return out * (1 - 0.45 * groove) + 0.12 * edge * albedo
    gold = canvas.hsv(0.12, 0.7, 0.78)
    pearl = canvas.hsv(rng.uniform(0.45, 0.6), 0.35, 0.7)
    lines = np.clip(1 - np.abs(np.sin(y * f * 0.7 + phase[0])) * 8, 0, 1)[..., None]
    dots = np.clip((np.sin(x * f * 1.6 + phase[1]) * np.sin(y * f * 1.6) - 0.75) * 6, 0, 1)
    out = out * (1 - lines) + gold * lines
    return out * (1 - dots[..., None]) + pearl * dots[..., None]


def _highlights(n: int, cover: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1–3 studio-light reflections: soft elongated spots, only on the object."""
    y, x = canvas.grid(n)
    h = np.zeros((n, n), np.float32)
    ys, xs = np.nonzero(cover > 0.9)
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(len(ys)))
        rx, ry = n * rng.uniform(0.03, 0.09), n * rng.uniform(0.02, 0.05)
        th = rng.uniform(-0.6, 0.6)
        u = ((x - xs[k]) * np.cos(th) + (y - ys[k]) * np.sin(th)) / rx
        v = (-(x - xs[k]) * np.sin(th) + (y - ys[k]) * np.cos(th)) / ry
        h = np.maximum(h, np.clip(1.6 - (u * u + v * v), 0, 1) * rng.uniform(0.85, 1.0))
    return (h * cover).astype(np.float32)


def render_scene(combo: dict[str, str], rng: np.random.Generator, size: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(glossy uint8 RGB, clean uint8 RGB, highlight coverage float32 HxW in [0, 1])."""
    n = size * canvas.SUPERSAMPLE
    img, _ = canvas.backdrop(rng, n, horizon=n * rng.uniform(0.55, 0.7))
    img *= 0.75  # a studio: the set is dimmer than the lights' reflections
    gain, _ = canvas.light_colour(rng)
    if combo["lacquer"] == "red":
        albedo = canvas.hsv(rng.uniform(-0.02, 0.02), rng.uniform(0.75, 0.9),
                            rng.uniform(0.5, 0.65))
    else:
        albedo = canvas.hsv(rng.uniform(), rng.uniform(0.05, 0.3), rng.uniform(0.06, 0.12))
    cover, shade = _object(combo["form"], n, rng)
    surface = _decoration(combo["decoration"], n, rng, albedo) * shade[..., None]
    clean = img * (1 - cover[..., None]) + surface * cover[..., None]
    h = _highlights(n, cover, rng)[..., None]
    light = canvas.hsv(rng.uniform(), rng.uniform(0.0, 0.06), 1.0) / gain  # white after the gain
    glossy = clean * (1 - h) + light * h
    noise = np.float32(rng.uniform(0.004, 0.02)) * rng.standard_normal((size, size, 3),
                                                                         dtype=np.float32)

    def finish(a: np.ndarray) -> np.ndarray:
        return (np.clip(canvas.downsample(a * gain) + noise, 0, 1) * 255 + 0.5).astype(np.uint8)

    return finish(glossy), finish(clean), canvas.downsample(h[..., 0])


def file_name(i: int) -> str:
    return f"gl{i:05d}.png"


def _render_chunk(jobs: Sequence[tuple[int, dict[str, str]]], out: Path, seed: int,
                  size: int) -> list[None]:
    for i, combo in jobs:
        glossy, clean, h = render_scene(combo, np.random.default_rng([seed, i]), size)
        name = file_name(i)
        canvas.write_file(out / "images" / name, canvas.png_bytes(glossy))
        canvas.write_file(out / "truth" / "clean" / name, canvas.png_bytes(clean))
        mask = (np.clip(h, 0, 1) * 255 + 0.5).astype(np.uint8)
        canvas.write_file(out / "truth" / "mask" / name, canvas.png_bytes(mask))
    return [None] * len(jobs)


def render_glossy(out: Path, *, n: int = 240, seed: int = 0, size: int = 64,
                  workers: int | None = None, progress: bool = False) -> Path:
    """Render ``n`` scenes (every combination equally often, shuffled by ``seed``) into
    ``out``; return ``out/images/labels.csv``. Same arguments, same bytes."""
    if size < 16 or size % 2:
        raise ValueError("size must be an even number >= 16")
    out = Path(out)
    for sub in ("images", "truth/clean", "truth/mask"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    combos = combinations()
    order = np.random.default_rng(seed).permutation(n)
    jobs = [(i, combos[int(order[i]) % len(combos)]) for i in range(n)]
    map_chunks(partial(_render_chunk, out=out, seed=seed, size=size), jobs, workers=workers,
               desc="mini-glossy", progress=progress)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(LABEL_COLUMNS)
    for i, combo in jobs:
        w.writerow([file_name(i), *(combo[a] for a in ATTRIBUTES)])
    labels = out / "images" / "labels.csv"
    atomic_write_bytes(labels, buf.getvalue().encode())
    atomic_write_json(out / "world.json", {"world": "mini-glossy", "seed": seed, "size": size,
                                           "images": n, "truth": ["truth/clean", "truth/mask"]})
    return labels
