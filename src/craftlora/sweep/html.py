"""sweep.html: one chart per metric (mean over seeds with its interval, seeds as dots) and a
sample grid per variant; every figure names the networks that produced it."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from PIL import Image

from craftlora.data.atomic import atomic_write_bytes
from craftlora.data.imageio import png_data_uri

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def metric_chart(body: dict[str, Any], metric: str) -> bytes | None:
    names = [n for n, e in body["variants"].items() if e["metrics"].get(metric)]
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(names), 2.8))
    for i, n in enumerate(names):
        m = body["variants"][n]["metrics"][metric]
        ax.bar(i, m["mean"], color="#8c2d19" if i else "#777", alpha=0.8)
        ax.errorbar(i, m["mean"], yerr=[[m["mean"] - m["ci_low"]], [m["ci_high"] - m["mean"]]],
                    color="black", capsize=4)
        ax.scatter([i] * len(m["seeds"]), m["seeds"], color="black", s=8, zorder=3)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_title(metric, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def sample_strip(folder: Path, k: int) -> Image.Image | None:
    files = sorted(folder.glob("*.png"))[:k]
    if not files:
        return None
    ims = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    return Image.fromarray(np.concatenate(ims, axis=1))


def write_page(out: Path, body: dict[str, Any], folders: dict[str, dict[int, str]],
               show: int) -> Path:
    esc = html.escape
    parts = [f"<h1>Sweep {esc(body['name'])}</h1>",
             f"<p>model {esc(body['model'])}; seeds {body['seeds']}; baseline "
             f"<b>{esc(body['baseline'])}</b>; best (lowest FD) <b>{esc(body['best'])}</b>"
             f" → <code>{esc(body['best_config'])}</code></p>",
             f"<p>FD feature space: {esc(str(body['feature_space']))}; LPIPS network: "
             f"{esc(body['lpips_network'])}; perceptual-loss network: "
             f"{esc(str(body['perceptual_network'] or 'none (no variant uses it)'))}</p>",
             "<p>Bars: mean over seeds with a 95 % bootstrap interval; dots: seeds.</p>"]
    for metric in ("fd", "agreement", "lpips_diversity", "highlight_area"):
        png = metric_chart(body, metric)
        if png:
            parts.append(f'<img src="{png_data_uri(png)}" alt="{metric}">')
    parts.append("<h2>Samples (first seed, same prompts and noise in every row)</h2>")
    for name, by_seed in folders.items():
        strip = sample_strip(Path(by_seed[min(by_seed)]), show) if by_seed else None
        if strip is not None:
            parts.append(f"<h3>{esc(name)}</h3><img src=\"{png_data_uri(strip)}\" "
                         f"style=\"image-rendering:pixelated;height:96px\">")
    page = "<!doctype html><meta charset=utf-8><title>sweep</title>" + "\n".join(parts)
    path = Path(out) / "sweep.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
