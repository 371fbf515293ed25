"""`craftlora experiment run CONFIG.toml`: configurations × seeds, results.json, report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import MEASURE, app, console, fail, print_json

experiment_app = typer.Typer(help="Mixing experiments: configs × seeds.", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment", rich_help_panel=MEASURE)


@experiment_app.command("run")
def run_cmd(
    config: Annotated[Path, typer.Argument(help="experiment config TOML")],
    out: Annotated[Path | None, typer.Option(help="output folder (default: next to the "
                                                  "config, named after it)")] = None,
    workspace: Annotated[Path | None, typer.Option(help="use this workspace instead of the "
                                                        "config's")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run (or resume) every configuration × seed; write results.json and report.html."""
    from craftlora.experiment.config import ExperimentConfigError, load_experiment
    from craftlora.experiment.runner import run_experiment

    try:
        cfg = load_experiment(config)
        if workspace is not None:
            cfg.workspace = str(workspace.resolve())
    except ExperimentConfigError as e:
        fail(e)
    out = out or config.parent / f"{config.stem}-out"
    try:
        results = run_experiment(cfg, config.parent, out, progress=not as_json)
    except (ValueError, RuntimeError, OSError) as e:
        fail(e)
    if as_json:
        print_json({k: v for k, v in results.items() if k != "configs"} | {
            "configs": results["configs"], "results": str(out / "results.json"),
            "report": str(out / "report.html")})
        return
    from craftlora.experiment.console import results_table

    console.print(f"network: {'; '.join(results['produced_by'])}")
    console.print(results_table(results))
    console.print(f"wrote {out / 'results.json'} and {out / 'report.html'}")
