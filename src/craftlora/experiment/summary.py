"""Aggregate per-run results: mean ± std over seeds, paired bootstrap deltas, minority classes,
confusion pairs and accuracy by combination frequency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from craftlora.classify.evaluate import f1_macro

METRICS = ("f1_macro", "accuracy", "top5", "f1_weighted")


def stat(values: Sequence[float]) -> dict[str, Any]:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "seeds": [float(x) for x in v]}


def minority_classes(train_counts: Sequence[int], names: Sequence[str], test_support: Sequence[int],
                     fraction: float) -> list[str]:
    """The rarest ``fraction`` of a task's classes in the real training set (at least one),
    among those with test images."""
    order = [i for i in np.argsort(np.asarray(train_counts), kind="stable") if test_support[i] > 0]
    k = max(1, int(round(len(order) * fraction)))
    return [names[i] for i in order[:k]]


def paired_bootstrap(
    y_true: np.ndarray,
    preds_a: Sequence[np.ndarray],
    preds_b: Sequence[np.ndarray],
    labels: Sequence[int],
    n_boot: int,
    seed: int = 0,
) -> dict[str, float]:
    """Mean over seeds of F1-macro(b) − F1-macro(a), with a 95 % CI from a two-level bootstrap:
    each draw resamples the seed pairs (training-run noise: a changed training set reshuffles
    training like a new seed) and the test images (the same image resample for both configs and
    every seed: paired). With one seed only the images are resampled."""
    rng = np.random.default_rng(seed)
    n, k = len(y_true), len(preds_a)

    def per_seed(w: np.ndarray | None) -> np.ndarray:
        return np.array([
            f1_macro(y_true, pb, labels, w) - f1_macro(y_true, pa, labels, w)
            for pa, pb in zip(preds_a, preds_b, strict=True)
        ])

    point = float(per_seed(None).mean())
    draws = np.array([
        per_seed(np.bincount(rng.integers(0, n, n), minlength=n).astype(float))[
            rng.integers(0, k, k)].mean()
        for _ in range(n_boot)])
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return {"delta": point, "ci_low": float(lo), "ci_high": float(hi), "bootstrap": n_boot,
            "p_le_0": float((draws <= 0).mean())}


def summarise(
    runs: Mapping[str, Mapping[int, Mapping[str, Any]]],
    *,
    tasks: Mapping[str, Sequence[str]],
    test_labels: Mapping[str, np.ndarray],
    train_counts: Mapping[str, Sequence[int]],
    baseline: str,
    confusion_pairs: Sequence[tuple[str, str, str]],
    minority_fraction: float,
    n_boot: int,
    progress: bool = True,
) -> dict[str, Any]:
    """results.json's body from ``runs[config][seed]`` (each run's result.json)."""
    from tqdm import tqdm

    support = {t: np.bincount(test_labels[t][test_labels[t] >= 0], minlength=len(n))
               for t, n in tasks.items()}
    minority = {t: minority_classes(train_counts[t], tasks[t], support[t], minority_fraction)
                for t in tasks}
    configs: dict[str, Any] = {}
    for name, by_seed in runs.items():
        seeds = sorted(by_seed)
        entry: dict[str, Any] = {"seeds": seeds, "tasks": {}, "mix": by_seed[seeds[0]]["mix"]}
        for t in tasks:
            m = {k: stat([by_seed[s]["test"][t][k] for s in seeds]) for k in METRICS}
            m["minority_f1"] = {
                c: stat([by_seed[s]["test"][t]["per_class"][c]["f1"] for s in seeds])
                for c in minority[t]
            }
            m["minority_mean_f1"] = stat([
                np.mean([by_seed[s]["test"][t]["per_class"][c]["f1"] for c in minority[t]])
                for s in seeds
            ])
            entry["tasks"][t] = m
        entry["mean_f1_macro"] = stat([
            np.mean([by_seed[s]["test"][t]["f1_macro"] for t in tasks]) for s in seeds
        ])
        buckets = sorted({b for s in seeds for b in by_seed[s]["combo_buckets"]})
        entry["combo_buckets"] = {
            b: {"exact_accuracy": stat([by_seed[s]["combo_buckets"][b]["exact_accuracy"]
                                        for s in seeds if b in by_seed[s]["combo_buckets"]]),
                "task_accuracy": {t: stat([by_seed[s]["combo_buckets"][b]["task_accuracy"][t]
                                           for s in seeds if b in by_seed[s]["combo_buckets"]])
                                  for t in tasks},
                "n_images": by_seed[seeds[0]]["combo_buckets"].get(b, {}).get("n_images", 0)}
            for b in buckets
        }
        entry["confusion_pairs"] = {}
        for t, a, b in confusion_pairs:
            if t not in tasks or a not in tasks[t] or b not in tasks[t]:
                continue
            ia, ib = tasks[t].index(a), tasks[t].index(b)
            errs = [by_seed[s]["test"][t]["confusion"][ia][ib]
                    + by_seed[s]["test"][t]["confusion"][ib][ia] for s in seeds]
            entry["confusion_pairs"][f"{t}: {a} <-> {b}"] = stat(errs)
        entry["produced_by"] = sorted({by_seed[s]["produced_by"] for s in seeds})
        configs[name] = entry

    deltas: dict[str, Any] = {}
    base = runs[baseline]
    others = [n for n in runs if n != baseline]
    bar = tqdm(total=len(others) * len(tasks), desc="bootstrap", disable=not progress,
               leave=False)
    for name in others:
        shared = sorted(set(runs[name]) & set(base))
        deltas[name] = {"paired_seeds": shared, "tasks": {}, "confusion_pairs": {}}
        for t in tasks:
            y = test_labels[t]
            keep = y >= 0
            present = np.unique(y[keep]).tolist()
            minority_idx = [tasks[t].index(c) for c in minority[t]]
            pa = [np.asarray(base[s]["test_pred"][t])[keep] for s in shared]
            pb = [np.asarray(runs[name][s]["test_pred"][t])[keep] for s in shared]
            deltas[name]["tasks"][t] = {
                "f1_macro": paired_bootstrap(y[keep], pa, pb, present, n_boot),
                "minority_mean_f1": paired_bootstrap(y[keep], pa, pb, minority_idx, n_boot),
                "accuracy": configs[name]["tasks"][t]["accuracy"]["mean"]
                - configs[baseline]["tasks"][t]["accuracy"]["mean"],
            }
            bar.update(1)
        for pair, v in configs[name]["confusion_pairs"].items():
            b0 = configs[baseline]["confusion_pairs"][pair]["mean"]
            deltas[name]["confusion_pairs"][pair] = {
                "baseline_errors": b0, "errors": v["mean"], "change": v["mean"] - b0}
    bar.close()
    return {"baseline": baseline, "minority_classes": minority, "configs": configs,
            "deltas": deltas}
