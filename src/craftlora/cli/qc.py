"""`craftlora qc WS --set NAME`: automatic quality control; `craftlora specular`: highlight
reduction I·(1 − α·M_spec) for glossy objects, with an example figure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import CHECK, app, console, fail, print_json


@app.command(rich_help_panel=CHECK)
def qc(
    ws: Annotated[Path, typer.Argument(help="workspace folder")],
    set_name: Annotated[str, typer.Option("--set", help="catalog set to check")],
    judge: Annotated[Path | None, typer.Option(help="judge checkpoint: enables attribute "
                                                     "agreement and domain features")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
    sharpness_reference: Annotated[str | None, typer.Option(help="'decoder': scale the sharpness limit to what the model's VAE keeps (measured once, cached); default: [qc] sharpness_reference")] = None,  # noqa: E501
) -> None:
    """Run the automatic checks on a set; results per image and check go into the catalog.

    Thresholds live in craftlora.toml [qc]. A rerun only checks images and checks that are new
    or whose configuration changed.
    """
    from craftlora.catalog.workspace import Workspace, WorkspaceError
    from craftlora.config import ConfigError
    from craftlora.qc import run_qc
    from craftlora.qc.checks import QCError

    try:
        with Workspace.open(ws) as w:
            summary = run_qc(w, set_name, judge=judge, progress=not as_json,
                             sharpness_reference=sharpness_reference)
    except (QCError, WorkspaceError, ConfigError, OSError, ValueError, RuntimeError) as e:
        fail(e)
    if as_json:
        print_json(summary)
        return
    from rich.table import Table

    t = Table(title=f"QC of {set_name}: {summary['passed_all']}/{summary['n']} pass "
                    f"({summary['pass_rate']:.1%})")
    for col in ("check", "passed", "failed", "pass rate", "run now"):
        t.add_column(col)
    for name, c in summary["checks"].items():
        t.add_row(name, str(c["passed"]), str(c["failed"]), f"{c['pass_rate']:.1%}",
                  str(summary["checked_now"].get(name, 0)))
    console.print(t)
    for name, why in summary["skipped"].items():
        console.print(f"[yellow]skipped[/] {name}: {why}")
    console.print(f"outlier features: {summary['outlier_features']['extractor']}")
