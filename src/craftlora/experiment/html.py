"""Pieces of self-contained HTML reports: inline PNG charts and images, figures in words,
and the tables of a QC summary, an experiment's results and a set's image strip."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from craftlora.catalog.workspace import Workspace
from craftlora.data.imageio import png_data_uri
from craftlora.experiment.charts import deltas_chart

H = html.escape


def chart_img(png: bytes, alt: str) -> str:
    return f'<img class=chart alt="{H(alt)}" src="{png_data_uri(png)}">'


def counts(d: Mapping[str, int]) -> str:
    """{'train': 1320, 'val': 340} → '1,320 train, 340 val'."""
    return ", ".join(f"{v:,} {k}" for k, v in d.items())


def mean_std(s: Mapping[str, Any]) -> str:
    """mean ± std over seeds, or the one seed's value."""
    return f"{s['mean']:.3f}" if len(s.get("seeds", [])) < 2 else \
        f"{s['mean']:.3f} ± {s['std']:.3f}"


def pixel_img(im: Image.Image, scale: int = 2) -> str:
    return f'<img src="{png_data_uri(im, scale)}" style="image-rendering:pixelated">'


def fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "—"
    return f"{100 * x:.1f} %" if pct else f"{x:.3f}" if isinstance(x, float) else str(x)


def synthetic_html(ws_dir: Path, set_name: str, k: int = 12) -> str:
    """A strip of a synthetic set's images with the model and LoRA hashes from provenance."""
    with Workspace.open(ws_dir) as ws:
        recs = ws.catalog.images(set_name=set_name)[:k]
        cells, makers = [], set()
        for r in recs:
            p = r.provenance
            makers.add((p.get("model", "?"), p.get("model_hash", "?")[:16],
                        ", ".join(f"{x['name']} sha256 {x.get('sha256', '?')[:16]}… w "
                                  f"{x['unet']}" for x in p.get("loras", []))))
            a = r.attributes
            cells.append(f"<figure>{pixel_img(Image.open(ws.resolve(r.path)).convert('RGB'))}"
                         f"<figcaption>{H(' '.join(a.get(x, '') for x in ('glaze', 'type')))}"
                         "</figcaption></figure>")
    who = "; ".join(f"model <code>{H(m)}</code> ({H(h)}…) + LoRA {H(lo) or 'none'}"
                    for m, h, lo in sorted(makers))
    return (f"<h3>set <code>{H(set_name)}</code></h3><p>made by {who}</p>"
            f"<div class=strip>{''.join(cells)}</div>")


def qc_html(qc: Mapping[str, Any]) -> str:
    rows = []
    for name, s in qc.items():
        why = ", ".join(f"{k} {v}" for k, v in s["failures_by_reason"].items()) or "none"
        rows.append(f"<tr><td>{H(name)}</td><td>{s['n']}</td><td>{s['passed_all']}</td>"
                    f"<td>{fmt(s['pass_rate'], True)}</td><td>{H(why)}</td></tr>")
    dec = next((s["sharpness_limit"]["decoder"] for s in qc.values()
                if (s.get("sharpness_limit") or {}).get("decoder")), None)
    note = "" if dec is None else (
        f"<p>Sharpness limit for generated sets, matched to the base model's VAE: its round "
        f"trip keeps {dec['ratio']:.1%} of the Laplacian variance of {dec['n']} real training "
        f"images (median {dec['roundtrip_median']:.1f} vs {dec['real_median']:.1f}), so their "
        f"limit is scaled by that ratio (never past the configured limit); the oracle set keeps "
        "the configured limit.</p>")
    return ("<h2>Automatic QC</h2><table><tr><th>set</th><th>images</th><th>passed</th>"
            "<th>pass rate</th><th>failures by check</th></tr>" + "".join(rows) + "</table>"
            + note)


def experiment_html(res: Mapping[str, Any]) -> str:
    tasks = list(res["tasks"])
    head = "".join(f"<th>{H(t)} F1-macro</th>" for t in tasks)
    rows = []
    for name, c in res["configs"].items():
        cells = "".join(f"<td>{mean_std(c['tasks'][t]['f1_macro'])}</td>" for t in tasks)
        rows.append(f"<tr><td>{H(name)}</td>{cells}</tr>")
    seeds = res["seeds"]
    spread = ("mean ± std over seeds " + ", ".join(map(str, seeds)) if len(seeds) > 1
              else f"one seed ({seeds[0]}), so no spread")
    notes = "".join(f"<li>{H(n)}</li>" for n in res.get("notes", []))
    return (f"<h2>Mixing experiment</h2><p>{res['real_train_images']:,} real training images, "
            f"{res['val_images']:,} validation and {res['test_images']:,} test images (all "
            f"real); classifier: {H('; '.join(res['produced_by']))}; F1-macro {spread}. "
            "Minority classes and confusion pairs: <a href=\"experiment/report.html\">"
            "experiment/report.html</a>.</p>"
            f"<table><tr><th>configuration</th>{head}</tr>{''.join(rows)}</table>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + (chart_img(deltas_chart(res), "F1-macro changes with CIs") if res.get("deltas")
               else ""))
