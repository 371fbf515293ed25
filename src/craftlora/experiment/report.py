"""report.html with PNG plots: learning curves, F1 per task, confusion matrices.

Every figure names the network and weights that produced it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from craftlora.data.atomic import atomic_write_bytes  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path.name


def learning_curves(runs: Mapping[str, Mapping[int, Any]], by: str, path: Path) -> str:
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, seeds) in enumerate(runs.items()):
        colour = f"C{i}"
        for k, r in enumerate(seeds.values()):
            ep = [h["epoch"] for h in r["history"]]
            a.plot(ep, [h["train_loss"] for h in r["history"]], color=colour, alpha=0.7,
                   label=name if k == 0 else None)
            b.plot(ep, [h["val_mean_f1_macro"] for h in r["history"]], color=colour, alpha=0.7,
                   label=name if k == 0 else None)
    a.set(xlabel="epoch", ylabel="training loss", title="training loss (every seed)")
    b.set(xlabel="epoch", ylabel="mean F1-macro (val)", title="validation mean F1-macro")
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    fig.suptitle(f"learning curves — network: {by}", fontsize=10)
    return _save(fig, path)


def f1_bars(results: Mapping[str, Any], by: str, path: Path) -> str:
    tasks = list(results["tasks"])
    names = list(results["configs"])
    fig, ax = plt.subplots(figsize=(1.6 * len(tasks) + 3, 4))
    w = 0.8 / max(1, len(names))
    for i, n in enumerate(names):
        m = [results["configs"][n]["tasks"][t]["f1_macro"]["mean"] for t in tasks]
        s = [results["configs"][n]["tasks"][t]["f1_macro"]["std"] for t in tasks]
        ax.bar(np.arange(len(tasks)) + i * w, m, w, yerr=s, label=n, capsize=2)
    ax.set_xticks(np.arange(len(tasks)) + w * (len(names) - 1) / 2, tasks)
    ax.set(ylabel="test F1-macro (mean ± std over seeds)", ylim=(0, 1))
    ax.legend(fontsize=8)
    ax.set_title(f"F1-macro per task — network: {by}", fontsize=10)
    return _save(fig, path)


def confusion_png(runs_of_config: Mapping[int, Any], task: str, name: str, by: str,
                  path: Path) -> str:
    first = next(iter(runs_of_config.values()))["test"][task]
    labels = first["labels"]
    cm = sum(np.asarray(r["test"][task]["confusion"], dtype=float)
             for r in runs_of_config.values())
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    k = len(labels)
    fig, ax = plt.subplots(figsize=(0.45 * k + 2.5, 0.45 * k + 2))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), labels, fontsize=7)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(f"{name} — {task} (test, summed over seeds)\nnetwork: {by}", fontsize=8)
    return _save(fig, path)


def _ms(s: Mapping[str, Any], pct: bool = False) -> str:
    return f"{s['mean']:.3f} ± {s['std']:.3f}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(x)}</th>" for x in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def write_report(out: Path, results: Mapping[str, Any], runs: Mapping[str, Mapping[int, Any]]
                 ) -> Path:
    """Write ``out/report.html`` and its PNGs under ``out/plots``."""
    plots = Path(out) / "plots"
    by = "; ".join(results["produced_by"])
    tasks = list(results["tasks"])
    base = results["baseline"]
    parts = [f"<h1>Mixing experiment</h1><p>Workspace <code>{html.escape(results['workspace'])}"
             f"</code>; seeds {results['seeds']}; {results['real_train_images']} real training, "
             f"{results['val_images']} validation and {results['test_images']} test images "
             f"(all real). Every figure below was produced by <b>{html.escape(by)}</b>.</p>"]
    rows = []
    for n, c in results["configs"].items():
        mix = c["mix"]
        rows.append([n, mix.get("synthetic_set") or "—", mix["n_synthetic"],
                     f"{mix['synthetic_share']:.3f}", _ms(c["mean_f1_macro"]),
                     *[_ms(c["tasks"][t]["f1_macro"]) for t in tasks]])
    parts.append("<h2>Test F1-macro (mean ± std over seeds)</h2>" + _table(
        ["config", "synthetic set", "n synthetic", "share", "mean over tasks", *tasks], rows))
    rows = [[n, t, _ms(c["tasks"][t]["accuracy"]), _ms(c["tasks"][t]["top5"]),
             _ms(c["tasks"][t]["f1_weighted"])]
            for n, c in results["configs"].items() for t in tasks]
    parts.append("<h2>Accuracy, top-5, F1-weighted</h2>" + _table(
        ["config", "task", "accuracy", "top-5", "F1-weighted"], rows))
    rows = []
    for n, d in results["deltas"].items():
        for t in tasks:
            f, m = d["tasks"][t]["f1_macro"], d["tasks"][t]["minority_mean_f1"]
            rows.append([n, t, f"{f['delta']:+.3f} [{f['ci_low']:+.3f}, {f['ci_high']:+.3f}]",
                         f"{m['delta']:+.3f} [{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]"])
    parts.append(f"<h2>Deltas against {html.escape(base)} (paired bootstrap 95 % CI over test "
                 "images, mean over paired seeds)</h2>" + _table(
                     ["config", "task", "Δ F1-macro", "Δ minority-class mean F1"], rows))
    rows = [[t, ", ".join(results["minority_classes"][t]),
             *[_ms(results["configs"][n]["tasks"][t]["minority_mean_f1"])
               for n in results["configs"]]] for t in tasks]
    parts.append("<h2>Minority classes (rarest in the real training set): mean F1</h2>" + _table(
        ["task", "classes", *results["configs"]], rows))
    rows = []
    for t in tasks:
        for c in results["minority_classes"][t]:
            rows.append([t, c, *[_ms(results["configs"][n]["tasks"][t]["minority_f1"][c])
                                 for n in results["configs"]]])
    parts.append("<h3>Per minority class F1</h3>" + _table(
        ["task", "class", *results["configs"]], rows))
    rows = []
    for n, d in results["deltas"].items():
        for pair, v in d["confusion_pairs"].items():
            rows.append([pair, n, f"{v['baseline_errors']:.1f}", f"{v['errors']:.1f}",
                         f"{v['change']:+.1f}"])
    parts.append("<h2>Key confusion pairs (test errors both ways, mean per seed)</h2>" + _table(
        ["pair", "config", base, "config", "change"], rows))
    rows = [[n, b, v["n_images"], _ms(v["exact_accuracy"]),
             *[_ms(v["task_accuracy"][t]) if "task_accuracy" in v else "—" for t in tasks]]
            for n, c in results["configs"].items() for b, v in c["combo_buckets"].items()]
    parts.append("<h2>Accuracy by how common the test image's combination is in the real "
                 "training set</h2>" + _table(
                     ["config", "bucket", "test images", "exact combination",
                      *[f"{t} accuracy" for t in tasks]], rows))
    imgs = [learning_curves(runs, by, plots / "learning_curves.png"),
            f1_bars(results, by, plots / "f1_macro.png")]
    parts.append("<h2>Plots</h2>" + "".join(
        f'<p><img src="plots/{i}" alt="{i}"></p>' for i in imgs))
    cm = []
    for n in runs:
        for t in tasks:
            cm.append(confusion_png(runs[n], t, n, by, plots / f"confusion_{n}_{t}.png"))
    parts.append("<h2>Confusion matrices</h2>" + "".join(
        f'<img src="plots/{i}" alt="{i}">' for i in cm))
    style = ("<style>body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-"
             "collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "font-size:13px}</style>")
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>craftlora experiment" \
           f"</title>{style}</head><body>{''.join(parts)}</body></html>"
    path = Path(out) / "report.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
