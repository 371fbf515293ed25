"""Consistency report: identity features present, their agreement between generations of
different prompts, tag adherence, LPIPS diversity; base vs LoRA vs true renders (the ceiling);
JSON and an HTML page with a grid per prompt."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from craftlora.catalog.workspace import Workspace
from craftlora.character.prompts import tags_of
from craftlora.data.atomic import atomic_write_bytes
from craftlora.data.imageio import load_rgb, png_data_uri
from craftlora.metrics.diversity import lpips_diversity
from craftlora.metrics.features import LpipsExtractor
from craftlora.metrics.weights import MissingWeightsError

Features = Callable[[np.ndarray], dict[str, bool]]
TagReader = Callable[[np.ndarray, list[str]], tuple[int, int]]


@dataclass
class Shot:
    prompt_id: str
    tags: list[str]
    image: np.ndarray


def set_shots(ws: Workspace, set_name: str) -> list[Shot]:
    """A generated set's images with their plan entry and the tags of their attributes."""
    return [Shot(rec.provenance.get("plan_entry", ""), tags_of(rec.attributes),
                 np.asarray(load_rgb(ws.resolve(rec.path))))
            for rec in ws.catalog.images(set_name=set_name)]


def lpips_net(say: Callable[[str], None] = print) -> Any:
    """AlexNet LPIPS; where its ImageNet weights are absent, the same network with seeded
    random weights (id ``lpips-alex-random``), said once through ``say``."""
    try:
        return LpipsExtractor("alex")
    except MissingWeightsError:
        say("LPIPS: AlexNet ImageNet weights not on this machine; diversity uses LPIPS-alex "
            "with seeded random weights (named lpips-alex-random)")
        return LpipsExtractor("alex", weights="random")


def identity_scores(shots: Sequence[Shot], features: Features) -> dict[str, Any]:
    """Share of identity features present; per feature; pairwise agreement across prompts."""
    reads = [features(s.image) for s in shots]
    names = list(reads[0]) if reads else []
    mat = np.array([[bool(r[k]) for k in names] for r in reads], float).reshape(len(reads), -1)
    agree = [float((mat[i] == mat[j]).mean()) for i, j in combinations(range(len(shots)), 2)
             if shots[i].prompt_id != shots[j].prompt_id]
    return {"share": float(mat.mean()) if mat.size else 0.0,
            "all_features": float(mat.all(axis=1).mean()) if mat.size else 0.0,
            "per_feature": {k: float(mat[:, n].mean()) for n, k in enumerate(names)},
            "cross_prompt_agreement": float(np.mean(agree)) if agree else None}


def tag_adherence(shots: Sequence[Shot], read: TagReader) -> float:
    hit = total = 0
    for s in shots:
        h, t = read(s.image, s.tags)
        hit, total = hit + h, total + t
    return hit / total if total else 0.0


def diversity(shots: Sequence[Shot], net: Any) -> float:
    groups: dict[str, list[np.ndarray]] = {}
    for s in shots:
        groups.setdefault(s.prompt_id, []).append(s.image)
    return lpips_diversity([g for g in groups.values() if len(g) >= 2], net)


def evaluate(sets: dict[str, Sequence[Shot]], features: Features, read: TagReader,
             net: Any) -> dict[str, Any]:
    """Every figure for each named set (e.g. base, lora, true)."""
    out: dict[str, Any] = {}
    for name, shots in sets.items():
        out[name] = {"n": len(shots), "identity": identity_scores(shots, features),
                     "tag_adherence": tag_adherence(shots, read),
                     "diversity": diversity(shots, net)}
    out["lpips"] = {"extractor": getattr(net, "id", type(net).__name__),
                    "weights_sha256": getattr(net, "weights_sha256", "unknown")}
    return out


def report_html(sets: dict[str, Sequence[Shot]], figures: dict[str, Any], path: Path,
                title: str) -> Path:
    """One row per prompt, one block of images per set; the figures on top."""
    prompts: dict[str, list[str]] = {}
    for shots in sets.values():
        for s in shots:
            prompts.setdefault(s.prompt_id, s.tags)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in sets)
    rows = []
    for pid, tags in prompts.items():
        cells = []
        for shots in sets.values():
            imgs = "".join(f'<img src="{png_data_uri(s.image, 2)}">' for s in shots
                           if s.prompt_id == pid)
            cells.append(f"<td>{imgs}</td>")
        rows.append(f"<tr><th>{html.escape(pid)}<br><small>{html.escape(', '.join(tags))}"
                    f"</small></th>{''.join(cells)}</tr>")
    summary = "".join(
        f"<li>{html.escape(n)}: identity {f['identity']['share']:.3f}, tag adherence "
        f"{f['tag_adherence']:.3f}, LPIPS diversity {f['diversity']:.3f}</li>"
        for n, f in figures.items() if isinstance(f, dict) and "identity" in f)
    page = (f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<h1>{html.escape(title)}</h1><ul>{summary}</ul>"
            f"<p>LPIPS: {html.escape(str(figures.get('lpips')))}</p>"
            f"<table border=1 cellspacing=0><tr><th>prompt</th>{head}</tr>{''.join(rows)}"
            "</table>")
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
