"""The mini character's spec, its candidate renders (with the faults a generator adds) and
true renders, and the detectors wrapped as the workflow's tagger and readers."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from craftlora.character.evaluate import Shot
from craftlora.character.prompts import AXES, tags_of
from craftlora.data.atomic import atomic_write_bytes
from craftlora.mini import canvas
from craftlora.mini.character import detect
from craftlora.mini.character.faults import distort, watermark
from craftlora.mini.character.mascot import MASCOT, Scene, off_model, render

TRIGGER = "pip"
SPEC: dict[str, Any] = {
    "description": "a small cartoon mascot, round peach head, big blue eyes, red bow, purple "
                   "shirt with pale yellow stripes, dark legs, simple flat colours",
    "objects": [
        {"name": "round head", "description": "a peach circle, as wide as tall",
         "position": ["on top of the body", "centred"]},
        {"name": "blue eyes", "description": "two round bright blue eyes",
         "position": ["middle of the face", "side by side"]},
        {"name": "red bow", "description": "a small red bow of two triangles",
         "position": ["upper left of the head"]},
        {"name": "purple shirt", "description": "a purple shirt with long sleeves",
         "position": ["below the head"]},
        {"name": "pale yellow stripes", "description": "three horizontal stripes",
         "position": ["across the shirt"]},
    ],
}


def scene_of(attributes: dict[str, str]) -> Scene:
    return Scene(**{k: attributes[k] for k in AXES})


def render_candidates(out: Path, entries: Sequence[tuple[str, dict[str, str]]], *, seed: int,
                      watermark_rate: float, distortion_rate: float, off_model_rate: float
                      ) -> dict[str, Any]:
    """One render per (id, attributes) into ``out`` with ``labels.csv``; a seeded share gets a
    watermark, a warp or a drifted identity feature. Returns the fault of every file."""
    out.mkdir(parents=True, exist_ok=True)
    faults: dict[str, str] = {}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", *AXES])
    for k, (eid, attrs) in enumerate(entries):
        rng = np.random.default_rng([seed, k, 0xCA])
        u = rng.uniform()
        fault = ("off-model" if u < off_model_rate else
                 "watermark" if u < off_model_rate + watermark_rate else
                 "distortion" if u < off_model_rate + watermark_rate + distortion_rate else "")
        ident = off_model(rng) if fault == "off-model" else MASCOT
        img = render(scene_of(attrs), ident, seed=seed * 100_003 + k)
        if fault == "watermark":
            img = watermark(img, rng)
        elif fault == "distortion":
            img = distort(img, rng)
        name = f"{eid}.png"
        canvas.write_file(out / name, canvas.png_bytes(img))
        w.writerow([name, *(attrs[a] for a in AXES)])
        faults[name] = fault or "none"
    atomic_write_bytes(out / "labels.csv", buf.getvalue().encode())
    return faults


def true_renders(attributes: dict[str, str], n: int, seed: int) -> list[np.ndarray]:
    return [render(scene_of(attributes), MASCOT, seed=seed + i) for i in range(n)]


def true_shots(entries: Sequence[Any], per_prompt: int, seed: int = 50_000) -> list[Shot]:
    """True renders of plan entries (the ceiling of the consistency report)."""
    return [Shot(e.id, tags_of(e.attributes), im) for e in entries
            for im in true_renders(e.attributes, per_prompt, seed)]


def tagger(image: np.ndarray) -> list[str]:
    """The detectors as a tagger: view, framing and background colour they read."""
    got = detect.read_tags(image)
    out = [got["view"], got["framing"]]
    if got["background"]:
        out.append(f"{got['background']} background")
    return [t for t in out if t]


tagger.id = "mini-character-detectors"  # type: ignore[attr-defined]
identity_features = detect.identity_features
tag_matches = detect.tag_matches
