"""`craftlora review WS`: the human review summary (counts, pass rates, κ) and CSV export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import CHECK, app, console, fail, print_json


@app.command(rich_help_panel=CHECK)
def review(
    ws: Annotated[Path, typer.Argument(help="workspace folder")],
    set_name: Annotated[str | None, typer.Option("--set", help="only this set")] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="write every decision here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Summarise review decisions: per set and combination, reasons, reviewer agreement (κ)."""
    from craftlora.catalog.workspace import Workspace, WorkspaceError
    from craftlora.config import ConfigError
    from craftlora.qc.review import summary, write_csv

    try:
        with Workspace.open(ws) as w:
            if set_name is not None and set_name not in w.catalog.sets():
                fail(f"{ws}: no set {set_name!r} (sets: {sorted(w.catalog.sets())})")
            result = summary(w.catalog, set_name)
            if csv is not None:
                result["csv"] = {"path": str(csv), "rows": write_csv(w.catalog, csv, set_name)}
    except (WorkspaceError, ConfigError, OSError) as e:
        fail(e)
    if as_json:
        print_json(result)
        return
    _print_table(result)


def _print_table(s: dict) -> None:
    from rich.table import Table

    rate = "–" if s["pass_rate"] is None else f"{s['pass_rate']:.1%}"
    t = Table(title=f"review: {s['reviewed']} images reviewed, {s['accepted']} accepted ({rate})")
    for col in ("set / combination", "images", "reviewed", "accepted", "pass rate"):
        t.add_column(col)
    for name, r in s["sets"].items():
        pr = "–" if r["pass_rate"] is None else f"{r['pass_rate']:.1%}"
        t.add_row(name, str(r.get("images", "")), str(r["reviewed"]), str(r["accepted"]), pr)
    for name, r in s["combinations"].items():
        t.add_row(f"  {name}", "", str(r["reviewed"]), str(r["accepted"]),
                  f"{r['pass_rate']:.1%}")
    console.print(t)
    for reason, n in sorted(s["reasons"].items()):
        console.print(f"rejected for {reason}: {n}")
    for a in s["agreement"]:
        k = "undefined" if a["kappa"] is None else f"{a['kappa']:.3f}"
        console.print(f"Cohen's κ {a['reviewers'][0]} / {a['reviewers'][1]}: {k} "
                      f"({a['images']} images both reviewed, {a['agreement']:.1%} agree)")
    if "csv" in s:
        console.print(f"wrote {s['csv']['rows']} decisions to {s['csv']['path']}")
