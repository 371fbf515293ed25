"""sweep.json's body: per variant and metric the mean, std, per-seed values, a bootstrap
interval of the mean, and the paired bootstrap of its difference from the first variant."""

from __future__ import annotations

from typing import Any

from craftlora.experiment.summary import stat
from craftlora.sweep.evaluate import LOWER_IS_BETTER, METRICS
from craftlora.sweep.expand import Variant
from craftlora.sweep.stats import paired_seed_bootstrap, seed_interval


def metric_entry(values: dict[int, float], first: dict[int, float] | None, n_boot: int
                 ) -> dict[str, Any] | None:
    if not values:
        return None
    lo, hi = seed_interval(values, n_boot)
    entry = {**stat([values[s] for s in sorted(values)]), "ci_low": lo, "ci_high": hi}
    if first is not None:
        entry["vs_first"] = paired_seed_bootstrap(first, values, n_boot)
    return entry


def summarise(variants: list[Variant], figures: dict[str, dict[int, dict[str, Any]]],
              seeds: list[int], n_boot: int) -> dict[str, Any]:
    first = variants[0].name

    def vals(name: str, metric: str) -> dict[int, float]:
        return {s: figures[name][s][metric] for s in seeds
                if figures[name][s].get(metric) is not None}

    out: dict[str, Any] = {}
    for v in variants:
        out[v.name] = {
            "overrides": {**v.train, **{f"generate.{k}": x for k, x in v.generate.items()}},
            "train_key": v.train_key,
            "metrics": {m: metric_entry(vals(v.name, m),
                                        None if v.name == first else vals(first, m), n_boot)
                        for m in METRICS},
        }
    return out


def best_variant(summary: dict[str, Any], metric: str = "fd") -> str:
    """The variant with the best mean ``metric`` (lowest FD by default)."""
    scored = {n: e["metrics"][metric]["mean"] for n, e in summary.items()
              if e["metrics"].get(metric)}
    if not scored:
        raise ValueError(f"no variant has a {metric!r} figure")
    sign = 1 if metric in LOWER_IS_BETTER else -1
    return min(scored, key=lambda n: (sign * scored[n], n))
