"""`craftlora demo`: the porcelain study end to end on the mini world (``craftlora.demo``);
`craftlora demo --samples`: the data-foundation demo on the shipped samples/ folder.
Other studies register as subcommands of the ``demo_app`` group (``craftlora demo NAME``).

The samples demo creates (or reopens) a workspace in OUT, ingests ``samples/porcelain`` (which
holds a few deliberately bad files, so rejection shows), then runs stats, split, captions and
export, and writes ``OUT/demo.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from craftlora.cli.app import WORLDS, app, console, fail

SAMPLE_FOLDER = "porcelain"
SAMPLE_CONFIG = "craftlora.toml"


def find_samples() -> Path | None:
    """The repository's samples/ folder (source checkout), else ./samples."""
    for base in (Path(__file__).resolve().parents[3], Path.cwd()):
        cand = base / "samples"
        if (cand / SAMPLE_CONFIG).is_file() and (cand / SAMPLE_FOLDER).is_dir():
            return cand
    return None


demo_app = typer.Typer()
app.add_typer(demo_app, name="demo", rich_help_panel=WORLDS)


@demo_app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("demo-out"),
    quick: Annotated[bool, typer.Option("--quick", help="a first look in under 5 minutes: "
                                                        "smaller sets, one seed")] = False,
    model: Annotated[str, typer.Option(help="base model (default: the bundled mini base)")]
    = "mini",
    workers: Annotated[int | None, typer.Option(min=1, help="processes for parallel steps "
                                                            "(default 2)")] = None,
    preset: Annotated[str | None, typer.Option(hidden=True, help="full, quick or tiny")] = None,
    samples: Annotated[bool, typer.Option("--samples", help="only the data-foundation demo "
                                                            "on the shipped samples/")] = False,
    samples_dir: Annotated[Path | None, typer.Option(help="samples folder for --samples "
                                                          "(default: repo samples/)")] = None,
) -> None:
    """Run the porcelain study on the mini world (resumable); writes OUT/demo.json and
    OUT/report.html. Every figure it prints was measured in this run. `craftlora demo NAME`
    runs another study instead (see the commands below)."""
    if ctx.invoked_subcommand is not None:
        return
    if samples:
        _samples_demo(out, quick, samples_dir)
        return
    from craftlora.demo.run import DemoError, run_demo
    from craftlora.demo.settings import preset as make_preset

    try:
        s = make_preset(preset or ("quick" if quick else "full"))
    except ValueError as e:
        fail(str(e))
    updates: dict[str, Any] = {"model": model}
    if workers is not None:
        updates["workers"] = workers
    s = s.model_copy(update=updates)
    if s.note:
        console.print(f"[bold yellow]{s.note}[/]")
    try:
        run_demo(out, s, console)
    except (DemoError, ValueError, RuntimeError, OSError) as e:
        fail(str(e))


def _samples_demo(out: Path, quick: bool, samples: Path | None) -> None:
    """The data-foundation demo on samples/ (ingest, split, stats, captions, export)."""
    from craftlora.catalog.captions import write_captions
    from craftlora.catalog.export import export
    from craftlora.catalog.ingest import ingest
    from craftlora.catalog.split import assign_splits
    from craftlora.catalog.stats import workspace_stats, write_charts
    from craftlora.catalog.workspace import Workspace
    from craftlora.cli.data import finite
    from craftlora.config import CONFIG_NAME, load_config
    from craftlora.data.atomic import atomic_write_json

    samples = samples or find_samples()
    if samples is None:
        fail("samples/ folder not found; run from the repository root or pass --samples-dir")
    console.rule("[bold]craftlora demo --samples — data-foundation demo only[/]")
    console.print("This demo covers the data foundation (ingest, stats, split, captions, export)"
                  " on the shipped samples; `craftlora demo` without --samples runs the whole "
                  "study on the mini world.")
    t0 = time.perf_counter()
    ws_dir = out / "workspace"
    if (ws_dir / CONFIG_NAME).is_file():
        ws = Workspace.open(ws_dir)
        console.print(f"reopened workspace {ws_dir} (ingest is idempotent)")
    else:
        ws = Workspace.create(ws_dir, load_config(samples / SAMPLE_CONFIG))
        console.print(f"created workspace {ws_dir}")
    result: dict[str, Any] = {"demo": "data-foundation", "quick": quick,
                              "workspace": str(ws_dir), "samples": str(samples)}
    with ws:
        console.print(f"[bold]1. ingest[/] {samples / SAMPLE_FOLDER}")
        report = ingest(ws, samples / SAMPLE_FOLDER, progress=False)
        console.print(f"   ingested {report.ingested}, already present "
                      f"{report.already_present}, rejected {len(report.rejected)}, "
                      f"label problems {len(report.label_problems)}")
        for r in report.rejected:
            console.print(f"   [yellow]rejected[/] {r['path']}: {r['reason']}", highlight=False)
        for p in report.label_problems:
            console.print(f"   [yellow]label problem[/] {p['file']}:{p['line']}: {p['reason']}",
                          highlight=False)
        result["ingest"] = report.to_json()

        console.print("[bold]2. split[/] by combination size")
        result["split"] = assign_splits(ws, seed=ws.config.split.seed)
        c = result["split"]["counts"]
        console.print(f"   train {c['train']}, val {c['val']}, test {c['test']}")

        console.print("[bold]3. stats[/]")
        st = workspace_stats(ws)
        st["charts"] = write_charts(st, out / "stats")
        result["stats"] = finite(st)
        console.print(f"   {st['observed_combinations']} combinations; imbalance ratio "
                      f"{st['imbalance_ratio']:.1f}, CV {st['cv']:.3f}, Gini {st['gini']:.3f}, "
                      f"normalized entropy {st['normalized_entropy']:.3f}")
        console.print(f"   charts: {st['charts']['long_tail']}, {st['charts']['lorenz']}")

        console.print("[bold]4. captions[/]")
        result["captions"] = write_captions(ws)
        console.print(f"   {result['captions']['written']} written, e.g. "
                      f"{result['captions']['example']!r}")

        console.print("[bold]5. export[/]")
        result["export"] = {}
        for fmt in ("kohya", "csv"):
            n = export(ws, fmt, out / "export" / fmt, split="train" if fmt == "kohya" else None)
            result["export"][fmt] = {"out": str(out / "export" / fmt), "exported": n}
            console.print(f"   {fmt}: {n} image(s) → {out / 'export' / fmt}")
    result["seconds"] = round(time.perf_counter() - t0, 2)
    atomic_write_json(out / "demo.json", result)
    console.print(f"wrote {out / 'demo.json'} — data-foundation demo only")
