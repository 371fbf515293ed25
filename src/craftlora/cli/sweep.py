"""`craftlora sweep SWEEP.toml`: variants × seeds of a training config, trained, compared and
summarised with paired bootstrap intervals (``craftlora.sweep``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import MEASURE, app, console, fail, print_json


@app.command(rich_help_panel=MEASURE)
def sweep(
    file: Annotated[Path, typer.Argument(help="sweep file (see docs/sweep.md)")],
    out: Annotated[Path | None, typer.Option(help="output folder (default: next to FILE, "
                                                  "named after the sweep)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print sweep.json")] = False,
) -> None:
    """Train every variant × seed (resumable), compare each on the same prompts and seeds,
    write sweep.json, sweep.html and the best variant's train config (best_train.toml)."""
    from craftlora.metrics.weights import MissingWeightsError
    from craftlora.sweep.config import SweepConfigError, load_sweep
    from craftlora.sweep.run import run_sweep
    from craftlora.train.config import TrainConfigError

    try:
        target = out or file.parent / load_sweep(file).name
        body = run_sweep(file, target, progress=not as_json)
    except (SweepConfigError, TrainConfigError, MissingWeightsError, ValueError, OSError) as e:
        fail(e)
    if as_json:
        print_json(body)
        return
    for name, e in body["variants"].items():
        cells = []
        for m, v in e["metrics"].items():
            if v:
                d = v.get("vs_first")
                diff = (f" (Δ {d['delta']:+.3g} [{d['ci_low']:+.3g}, {d['ci_high']:+.3g}])"
                        if d and d["delta"] is not None else "")
                cells.append(f"{m} {v['mean']:.3g}±{v['std']:.2g}{diff}")
        console.print(f"[bold]{name}[/]: " + "; ".join(cells))
    console.print(f"FD in {body['feature_space']}; LPIPS {body['lpips_network']}; "
                  f"best {body['best']} → {body['best_config']}; page {target / 'sweep.html'}")
