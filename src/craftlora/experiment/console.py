"""An experiment's results as a console table: F1-macro per configuration and task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from craftlora.experiment.html import mean_std


def results_table(res: Mapping[str, Any]) -> Table:
    """mean ± std over seeds, or the one seed's value (no ± 0.000)."""
    tasks = list(res["tasks"])
    seeds = ", ".join(map(str, res["seeds"]))
    t = Table(title=f"F1-macro on the real test set, mean ± std over seeds {seeds}"
              if len(res["seeds"]) > 1 else f"F1-macro on the real test set (seed {seeds})")
    t.add_column("configuration")
    for task in tasks:
        t.add_column(task)
    for name, c in res["configs"].items():
        t.add_row(name, *(mean_std(c["tasks"][x]["f1_macro"]) for x in tasks))
    return t
