"""``OUT/report.html``: Table 6, labelled sample grids, QC, the experiment, wall times.

Self-contained: charts and sample images are inline PNG data (it links only the experiment's
own longer report). Every figure comes from ``demo.json``; none is typed in here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from craftlora.experiment.html import (
    H,
    chart_img,
    counts,
    experiment_html,
    fmt,
    pixel_img,
    qc_html,
    synthetic_html,
)
from craftlora.generate.compare import agreement_chart
from craftlora.mini.judge_build import judge_html


def table6_html(t6: Mapping[str, Any]) -> str:
    rows = []
    for label, key in (("base model", "base"), ("base + LoRA", "lora"),
                       ("fresh true renders (judge ceiling)", "judge_ceiling"),
                       ("the same renders through the base's VAE", "decoder_ceiling")):
        if key not in t6:
            continue
        r = t6[key]
        rows.append(f"<tr><td>{label}</td><td>{r['fd_domain']:.1f}</td>"
                    f"<td>{fmt(r['glaze_type_agreement'], True)}</td>"
                    f"<td>{fmt(r['combo_agreement'], True)}</td><td>{r['n']}</td></tr>")
    v = t6["vs_base"]["lora"]
    checks = "".join(f"<li>{'reached' if ok else 'not reached'}: {H(k)}</li>"
                     for k, ok in t6.get("checks", {}).items())
    j = t6["judge"]
    return (
        "<h2>Table 6 on the mini world: base vs LoRA, same prompts and seeds</h2>"
        "<table><tr><th>images from</th><th>FD (domain)</th><th>glaze + type agreement</th>"
        "<th>exact 4-attribute agreement</th><th>N</th></tr>" + "".join(rows) + "</table>"
        f"<p>FD in the judge's feature space (extractor <code>{H(j['extractor'])}</code>, "
        f"weights sha256 <code>{H(j['weights_sha256'][:16])}…</code>) against "
        f"{t6['reference']['n']} real test images; agreement = the judge reads the intended "
        "attributes back. The ceiling row is the judge on fresh true renders of the same "
        "combinations; the VAE row is those renders encoded and decoded by the base's VAE, the "
        "best any image made through that decoder can look.</p>"
        f"<p>The LoRA lowers the base's FD by {fmt(v['fd_reduction'], True)}"
        + (f" and reaches {fmt(v['combo_over_ceiling'], True)} of the judge's ceiling on exact "
           "combinations" if v["combo_over_ceiling"] is not None else "") + ".</p>"
        + chart_img(agreement_chart(dict(t6), ["base", "lora"]), "Table 6 agreement chart")
        + (f"<ul>{checks}</ul>" if checks else ""))


def samples_html(out: Path, demo: Mapping[str, Any], k: int = 8) -> str:
    """Rows: prompt | true render | base | base + LoRA, labelled with what made them."""
    from craftlora.mini.judge import true_renders

    t6dir = out / "table6"
    prompts = json.loads((t6dir / "prompts.json").read_text(encoding="utf-8"))[:k]
    truth = true_renders(prompts, demo["settings"]["size"])
    lora = demo["lora"]
    gen = demo["table6_generation"]
    head = (f"<p>Base model <code>{H(str(demo['settings']['model']))}</code> (weights sha256 "
            f"<code>{H(gen['model_hash'][:16])}…</code>); LoRA <code>{H(Path(lora['lora']).name)}"
            f"</code> (sha256 <code>{H(lora['lora_sha256'][:16])}…</code>, rank {lora['rank']}, "
            f"{lora['steps']} steps) at weight {demo['settings']['lora']['weight']}; "
            f"{H(demo['settings']['generation']['sampler'])}, "
            f"{demo['settings']['generation']['steps']} steps, CFG "
            f"{demo['settings']['generation']['cfg']}. Same seed in each row.</p>")
    rows = []
    for p, t in zip(prompts, truth, strict=True):
        cells = [pixel_img(Image.fromarray(t))]
        for m in ("base", "lora"):
            cells.append(pixel_img(Image.open(t6dir / m / f"{p['i']:05d}.png").convert("RGB")))
        rows.append(f"<tr><td><code>{H(p['prompt'])}</code><br>seed {p['seed']}</td>"
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ("<h2>Generation samples</h2>" + head + "<table><tr><th>prompt</th>"
            "<th>true render</th><th>base model</th><th>base + LoRA</th></tr>"
            + "".join(rows) + "</table>")


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
        table6_html(demo["table6"]),
        judge_html(demo["judge"]),
        samples_html(out, demo),
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
