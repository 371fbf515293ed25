"""``OUT/report.html``: Table 6, labelled sample grids, QC, the experiment, wall times.

Self-contained (sample images inline as PNG data); it links the experiment's own report and
the long-tail charts. Every figure comes from ``demo.json``; none is typed in here.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

H = html.escape


def _img(im: Image.Image, scale: int = 2) -> str:
    im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return (f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}" '
            'style="image-rendering:pixelated">')


def _f(x: Any, pct: bool = False) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    return f"{100 * x:.1f} %" if pct else f"{x:.3f}" if isinstance(x, float) else str(x)


def table6_html(t6: Mapping[str, Any]) -> str:
    rows = []
    for label, key in (("base model", "base"), ("base + LoRA", "lora"),
                       ("fresh true renders (judge ceiling)", "judge_ceiling"),
                       ("the same renders through the base's VAE", "decoder_ceiling")):
        if key not in t6:
            continue
        r = t6[key]
        rows.append(f"<tr><td>{label}</td><td>{_f(r['fd_domain'])}</td>"
                    f"<td>{_f(r['glaze_type_agreement'], True)}</td>"
                    f"<td>{_f(r['combo_agreement'], True)}</td><td>{r['n']}</td></tr>")
    c = t6["checks"]
    checks = "".join(f"<li>{H(k)}: <b>{_f(v, k in ('fd_reduction', 'lora_combo_over_ceiling'))}"
                     f"</b></li>" for k, v in c.items())
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
        f"best any image made through that decoder can look.</p><ul>{checks}</ul>")


def judge_html(judge: Mapping[str, Any]) -> str:
    """Where the judge came from and how well it reads fresh true renders."""
    h = judge["heldout"]
    acc = ", ".join(f"{t} {v:.3f}" for t, v in h["task_accuracy"].items())
    return (f"<p>Judge: {H(judge.get('source', 'trained in this run'))} — "
            f"<code>{H(judge['backbone'])}</code> trained on {judge['train_images']} fresh "
            f"renders; on {h.get('images', judge['heldout_images'])} held-out renders: "
            f"{H(acc)}; glaze + type {h['glaze_type_accuracy']:.3f}, "
            f"exact {h['combo_accuracy']:.3f}{_decoded(judge)}.</p>")


def _decoded(judge: Mapping[str, Any]) -> str:
    d = judge.get("heldout_decoded")
    if not d:
        return ""
    return (f"; half its training renders went through the base's VAE, and on the held-out "
            f"renders' VAE round trips it reads glaze + type {d['glaze_type_accuracy']:.3f}, "
            f"exact {d['combo_accuracy']:.3f}")


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
        cells = [_img(Image.fromarray(t))]
        for m in ("base", "lora"):
            cells.append(_img(Image.open(t6dir / m / f"{p['i']:05d}.png").convert("RGB")))
        rows.append(f"<tr><td><code>{H(p['prompt'])}</code><br>seed {p['seed']}</td>"
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ("<h2>Generation samples</h2>" + head + "<table><tr><th>prompt</th>"
            "<th>true render</th><th>base model</th><th>base + LoRA</th></tr>"
            + "".join(rows) + "</table>")


def synthetic_html(ws_dir: Path, set_name: str, k: int = 12) -> str:
    """A strip of a synthetic set's images with the model and LoRA hashes from provenance."""
    from craftlora.catalog.workspace import Workspace

    with Workspace.open(ws_dir) as ws:
        recs = ws.catalog.images(set_name=set_name)[:k]
        cells, makers = [], set()
        for r in recs:
            p = r.provenance
            makers.add((p.get("model", "?"), p.get("model_hash", "?")[:16],
                        ", ".join(f"{x['name']} sha256 {x.get('sha256', '?')[:16]}… w "
                                  f"{x['unet']}" for x in p.get("loras", []))))
            a = r.attributes
            cells.append(f"<td>{_img(Image.open(ws.resolve(r.path)).convert('RGB'))}<br>"
                         f"<small>{H(' '.join(a.get(x, '') for x in ('glaze', 'type')))}"
                         "</small></td>")
    who = "; ".join(f"model <code>{H(m)}</code> ({H(h)}…) + LoRA {H(lo) or 'none'}"
                    for m, h, lo in sorted(makers))
    return (f"<h3>set <code>{H(set_name)}</code></h3><p>made by {who}</p>"
            f"<table><tr>{''.join(cells)}</tr></table>")


def qc_html(qc: Mapping[str, Any]) -> str:
    rows = []
    for name, s in qc.items():
        why = ", ".join(f"{k} {v}" for k, v in s["failures_by_reason"].items()) or "—"
        rows.append(f"<tr><td>{H(name)}</td><td>{s['n']}</td><td>{s['passed_all']}</td>"
                    f"<td>{_f(s['pass_rate'], True)}</td><td>{H(why)}</td></tr>")
    dec = next((s["sharpness_limit"]["decoder"] for s in qc.values()
                if (s.get("sharpness_limit") or {}).get("decoder")), None)
    note = "" if dec is None else (
        f"<p>Sharpness limit for generated sets, matched to the base model's VAE: its round "
        f"trip keeps {dec['ratio']:.1%} of the Laplacian variance of {dec['n']} real training "
        f"images (median {dec['roundtrip_median']:.1f} vs {dec['real_median']:.1f}), so their "
        f"limit is scaled by that ratio; the oracle set keeps the configured limit.</p>")
    return ("<h2>Automatic QC</h2><table><tr><th>set</th><th>images</th><th>passed</th>"
            "<th>pass rate</th><th>failures by check</th></tr>" + "".join(rows) + "</table>"
            + note)


def experiment_html(res: Mapping[str, Any]) -> str:
    tasks = list(res["tasks"])
    head = "".join(f"<th>{H(t)} F1-macro</th>" for t in tasks)
    rows = []
    for name, c in res["configs"].items():
        cells = "".join(
            f"<td>{c['tasks'][t]['f1_macro']['mean']:.3f} ± {c['tasks'][t]['f1_macro']['std']:.3f}"
            "</td>" for t in tasks)
        rows.append(f"<tr><td>{H(name)}</td>{cells}</tr>")
    return (f"<h2>Mixing experiment</h2><p>{res['real_train_images']} real training images, "
            f"{res['val_images']} validation and {res['test_images']} test images (all real); "
            f"seeds {res['seeds']}; classifier: {H('; '.join(res['produced_by']))}. Mean ± std "
            "over seeds. Deltas with paired bootstrap intervals, minority classes and confusion "
            "pairs: <a href=\"experiment/report.html\">experiment/report.html</a>.</p>"
            f"<table><tr><th>configuration</th>{head}</tr>{''.join(rows)}</table>")


def write_report(out: Path, demo: Mapping[str, Any]) -> Path:
    out = Path(out)
    ws_dir = Path(demo["world"]["workspace"])
    quick = demo["settings"]["preset"] != "full"
    banner = ("<p class=warn><b>Quick look:</b> smaller sets, one seed, fewer steps — these are "
              "not the full experiment's figures.</p>" if quick else "")
    walls = "".join(f"<tr><td>{H(k)}</td><td>{v:.0f}</td></tr>"
                    for k, v in demo["wall_s_per_step"].items())
    cn = demo["controlnet"]
    cn_html = (f"<p>Tolerant contour F1 at 2 px on {cn['held_out_sketches']} held-out outline "
               f"sketches: <b>{cn['contour_f1']:.3f}</b></p>" if cn.get("contour_f1") is not None
               else f"<p>Not measured: {H(cn.get('reason', ''))}</p>")
    w = demo["world"]
    parts = [
        "<!doctype html><meta charset=utf-8><title>craftlora demo</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}td,th{padding:2px 8px;"
        "border-bottom:1px solid #ddd;text-align:left}.warn{background:#fff3cd;padding:6px}"
        "</style><h1>craftlora demo on the mini world</h1>", banner,
        f"<p>mini-kiln: {w['images']} images, {w['combinations']} combinations, imbalance ratio "
        f"{w['imbalance_ratio']:.0f}, split {w['split']}; captions "
        f"<code>{H(w['caption_template'])}</code>. Charts: <a href=\"stats/long_tail.png\">long "
        "tail</a>, <a href=\"stats/lorenz.png\">Lorenz curve</a>.</p>",
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
