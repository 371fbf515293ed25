"""`craftlora demo style`: the one-shot style study on the stitch world (thin composition).

Render the world, discover style blocks on the reference pairs, train every method per style
(resumable runs under ``OUT/runs/<style>/<method>``), stylize the held-out designs, score them
and write ``OUT/style.json`` + ``OUT/style.html``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from craftlora.experiment.html import H, chart_img, fmt, pixel_img
from craftlora.mini.judge import JUDGES
from craftlora.mini.stitch.render import read_labels, render_stitch
from craftlora.mini.stitch.styles import STYLES
from craftlora.models.loader import load_components
from craftlora.style.metrics import StyleClassifier, content_net
from craftlora.style.study import (
    METHODS,
    discover_blocks,
    every_block,
    method_settings,
    score,
    stylize_with,
    train_method,
    write_blocks,
)
from craftlora.train.style_mode import StyleSettings, style_prompt

FIGURES = ("hfrd", "lpips_content", "hist", "style_agreement", "mask_iou")


@dataclass(frozen=True)
class StylePreset:
    per_motif: int = 2
    styles: tuple[str, ...] = ("satin", "cross", "beads")
    k: int = 3
    invert_steps: int = 10
    stage1: int = 200
    stage2: int = 100
    rank: int = 8
    lr: float = 5e-4
    strength: float = 0.6
    steps: int = 20
    reference: str = "star-000"
    expansions: tuple[str, ...] = ("circle-000", "vase-000")


PRESETS = {
    "full": StylePreset(),
    "quick": StylePreset(per_motif=1, stage1=20, stage2=10, invert_steps=4, steps=8),
    "tiny": StylePreset(per_motif=1, styles=("satin",), stage1=2, stage2=1, invert_steps=2,
                        steps=2),  # tests: every piece once, in seconds
}


def _img(root: Path, sub: str, rid: str) -> np.ndarray:
    return np.asarray(Image.open(root / sub / f"{rid}.png").convert("RGB"))


def run_style_demo(out: Path, *, preset: str = "full", model: str = "mini", seed: int = 0
                   ) -> dict:
    t0 = time.time()
    p = PRESETS[preset]
    out = Path(out)
    world = out / "world"
    if not (world / "labels.csv").exists():
        render_stitch(world, per_motif=p.per_motif, seed=seed, size=64)
    rows = read_labels(world)
    train_ids = [r["id"] for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] == "test"]
    caption = {r["id"]: r["caption"] for r in rows}
    comp = load_components(model)
    found = write_blocks(discover_blocks(
        comp, [(_img(world, s, p.reference), _img(world, "design", p.reference),
                caption[p.reference]) for s in p.styles], k=p.k, steps=p.invert_steps),
        out, f"{model}: self-attention similarity, embroidery vs design")
    every = every_block(model)
    clf = StyleClassifier([_img(world, s, i) for s in STYLES for i in train_ids],
                          [s for s in STYLES for _ in train_ids])
    lpips = content_net("lpips-alex", JUDGES / "judge-64.safetensors")
    base = StyleSettings(style_blocks=[], rank=p.rank, lr=p.lr, stage1_steps=p.stage1,
                         stage2_steps=p.stage2, seed=seed + 42)
    designs = [_img(world, "design", r["id"]) for r in test]
    masks = [_img(world, "mask", r["id"])[..., 0] > 127 for r in test]
    per: dict[str, list[dict]] = {m: [] for m in METHODS}
    grid: dict[str, dict[str, list[np.ndarray]]] = {}
    for style in p.styles:
        ref = _img(world, style, p.reference)
        exp = [(_img(world, "design", e), caption[e]) for e in p.expansions]
        grid[style] = {"design": designs, "reference": [ref] * len(designs),
                       "truth": [_img(world, style, r["id"]) for r in test]}
        for m in METHODS:
            s = method_settings(m, base, found["blocks"], every)
            run = out / "runs" / style / m
            lora = train_method(model, s, ref, _img(world, "design", p.reference),
                                caption[p.reference], exp, run)
            outs = stylize_with(model, lora, designs, [style_prompt(r["caption"]) for r in test],
                                strength=p.strength, steps=p.steps, seed=seed)
            grid[style][m] = outs
            for r, o in zip(test, outs, strict=True):
                Image.fromarray(o).save(run / f"out-{r['id']}.png")
            per[m].append(score(outs, designs, masks, ref, style, clf, lpips))
    truth = [score(grid[s]["truth"], designs, masks, _img(world, s, p.reference), s, clf, lpips)
             for s in p.styles]
    result = {
        "methods": {m: {f: float(np.mean([d[f] for d in per[m]])) for f in FIGURES}
                    for m in METHODS},
        "per_style": {m: dict(zip(p.styles, per[m], strict=True)) for m in METHODS},
        "ground_truth_embroidery": {f: float(np.mean([d[f] for d in truth])) for f in FIGURES},
        "blocks": found["blocks"], "all_blocks": every, "block_source": found["source"],
        "model": model, "content_network": lpips.id, "preset": {"name": preset, **asdict(p)},
        "held_out_designs": [r["id"] for r in test], "styles": list(p.styles),
        "wall_s": round(time.time() - t0, 1),
    }
    (out / "style.json").write_text(json.dumps(result, indent=1))
    (out / "style.html").write_text(_html(result, grid, out))
    return result


def _html(res: dict, grid: dict, out: Path) -> str:
    head = "".join(f"<th>{H(f)}</th>" for f in FIGURES)
    rows = "".join(f"<tr><td>{H(m)}</td>" + "".join(f"<td>{fmt(v[f])}</td>" for f in FIGURES)
                   + "</tr>" for m, v in res["methods"].items())
    cols = ["design", "reference", "truth", *METHODS]
    cells = ""
    for style, g in grid.items():
        cells += f"<h3>{H(style)}</h3><table><tr>" + "".join(f"<th>{H(c)}</th>" for c in cols)
        for i in range(len(g["design"])):
            cells += "<tr>" + "".join(f"<td>{pixel_img(Image.fromarray(g[c][i]), 2)}</td>"
                                      for c in cols) + "</tr>"
        cells += "</table>"
    chart = (out / "blocks.png")
    chart_html = chart_img(chart.read_bytes(), "block similarity") if chart.exists() else ""
    return (f"<html><head><meta charset='utf-8'><title>style study</title></head><body>"
            f"<h1>One-shot style LoRA on the stitch world</h1><p>model {H(res['model'])}, "
            f"content network {H(res['content_network'])}, wall {res['wall_s']} s; means over "
            f"held-out designs {H(', '.join(res['held_out_designs']))} and styles "
            f"{H(', '.join(res['styles']))}</p><table border=1><tr><th>method</th>{head}</tr>"
            f"{rows}</table><p>style blocks: {H(', '.join(res['blocks']))}</p>{chart_html}"
            f"{cells}</body></html>")



