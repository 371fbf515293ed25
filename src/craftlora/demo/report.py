"""``OUT/report.html``: Table 6, labelled sample grids, QC, the experiment, wall times.

Self-contained: charts and sample images are inline PNG data (it links only the experiment's
own longer report). Every figure comes from ``demo.json``; none is typed in here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from craftlora.experiment.html import (
    H,
    chart_img,
    counts,
    experiment_html,
    fmt,
    qc_html,
    synthetic_html,
)
from craftlora.generate.compare import figures_html, grid_html
from craftlora.mini.judge_build import judge_html

TABLE6_ROWS = {"base": "base model", "lora": "base + LoRA",
               "judge_ceiling": "fresh true renders (judge ceiling)",
               "decoder_ceiling": "the same renders through the base's VAE"}


def table6_html(out: Path, demo: Mapping[str, Any], k: int = 8) -> str:
    """``craftlora compare``'s figures and grid (with true renders), and the study's checks."""
    from craftlora.mini.judge import true_renders

    t6, lora, g = demo["table6"], demo["lora"], demo["settings"]["generation"]
    v = t6["vs_base"]["lora"]
    checks = "".join(f"<li>{'reached' if ok else 'not reached'}: {H(c)}</li>"
                     for c, ok in t6.get("checks", {}).items())
    prompts = json.loads((out / "table6" / "prompts.json").read_text(encoding="utf-8"))[:k]
    made_by = (f"Base <code>{H(str(demo['settings']['model']))}</code> (sha256 "
               f"<code>{H(demo['table6_generation']['model_hash'][:16])}…</code>); LoRA "
               f"<code>{H(Path(lora['lora']).name)}</code> (sha256 "
               f"<code>{H(lora['lora_sha256'][:16])}…</code>, rank {lora['rank']}, "
               f"{lora['steps']} steps) at weight {demo['settings']['lora']['weight']}; "
               f"{H(g['sampler'])}, {g['steps']} steps, CFG {g['cfg']}; same seed per line.")
    return (
        "<h2>Table 6 on the mini world: base vs LoRA, same prompts and seeds</h2>"
        + figures_html(t6, ["base", "lora"], TABLE6_ROWS)
        + f"<p>The LoRA lowers the base's FD by {fmt(v['fd_reduction'], True)}"
        + (f" and reaches {fmt(v['combo_over_ceiling'], True)} of the judge's ceiling on exact "
           "combinations" if v["combo_over_ceiling"] is not None else "") + ".</p>"
        + (f"<ul>{checks}</ul>" if checks else "")
        + f"<h2>Generation samples</h2><p>{made_by}</p>"
        + grid_html(out / "table6", ["base", "lora"], k,
                    {"true render": true_renders(prompts, demo["settings"]["size"])},
                    TABLE6_ROWS))


def write_report(out: Path, demo: Mapping[str, Any]) -> Path:
    out = Path(out)
    ws_dir = Path(demo["world"]["workspace"])
    quick = demo["settings"]["preset"] != "full"
    banner = f"<p class=warn><b>Quick look:</b> {H(demo['note'])}</p>" if quick else ""
    walls = "".join(f"<tr><td>{H(k)}</td><td>{v:.0f}</td></tr>"
                    for k, v in demo["wall_s_per_step"].items())
    cn = demo["controlnet"]
    cn_html = (f"<p>Tolerant contour F1 at 2 px on {cn['held_out_sketches']} held-out outline "
               f"sketches: <b>{cn['contour_f1']:.3f}</b></p>" if cn.get("contour_f1") is not None
               else f"<p>Not measured: {H(cn.get('reason', ''))}</p>")
    w = demo["world"]
    parts = [
        "<!doctype html><meta charset=utf-8><title>craftlora demo</title><style>"
        "body{font-family:sans-serif;max-width:1180px;margin:2em auto;padding:0 1em}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}"
        ".warn{background:#fff3cd;padding:6px}.chart{max-width:100%;height:auto}"
        ".strip{display:flex;flex-wrap:wrap;gap:4px}figure{margin:0;text-align:center}"
        "img{max-width:100%}</style><h1>craftlora demo on the mini world</h1>", banner,
        f"<p>mini-kiln: {w['images']:,} images, {w['combinations']} combinations, imbalance "
        f"ratio {w['imbalance_ratio']:.0f}, split {counts(w['split'])}; captions "
        f"<code>{H(w['caption_template'])}</code>.</p>",
        *(chart_img(Path(p).read_bytes(), k.replace("_", " ")) for k, p in w["charts"].items()
          if Path(p).is_file()),
        table6_html(out, demo),
        judge_html(demo["judge"]),
        "<h2>Synthetic sets</h2>",
        *(synthetic_html(ws_dir, n) for n in ("minimal", "comprehensive")),
        qc_html(demo["qc"]),
        experiment_html(demo["experiment"]),
        "<h2>Sketch guidance (tiny ControlNet)</h2>", cn_html,
        "<h2>Wall time per step (s)</h2><table>", walls,
        f"<tr><th>total</th><th>{demo['wall_s']:.0f}</th></tr></table>",
    ]
    path = out / "report.html"
    path.write_text("".join(parts), encoding="utf-8")
    return path
