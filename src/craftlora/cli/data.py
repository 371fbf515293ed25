"""Data commands: `ingest`, `stats`, `split`, `captions`, `export`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from craftlora.catalog.store import CatalogError
from craftlora.catalog.workspace import Workspace, WorkspaceError
from craftlora.cli.app import app, console, fail, print_json
from craftlora.config import ConfigError

WsArg = Annotated[Path, typer.Argument(help="workspace folder (created by `craftlora init`)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]


@contextmanager
def open_workspace(ws: Path, *, write: bool = True) -> Iterator[Workspace]:
    """The workspace, or one error line (missing, damaged catalog, read-only for a writer)."""
    try:
        w = Workspace.open(ws, write=write)
    except (WorkspaceError, ConfigError, CatalogError) as e:
        fail(str(e))
    try:
        yield w
    finally:
        w.close()


def finite(obj: Any) -> Any:
    """JSON has no infinity: write it as None (figures that are undefined)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    return obj


@app.command(rich_help_panel="Data")
def ingest(
    ws: WsArg,
    source: Annotated[Path, typer.Argument(help="folder of images (walked recursively)")],
    labels: Annotated[
        Path | None, typer.Option(help="CSV: a `file` column + one column per attribute")
    ] = None,
    origin: Annotated[str, typer.Option(help="real | synthetic")] = "real",
    set_name: Annotated[
        str | None, typer.Option("--set", help="set name (default: the origin)")
    ] = None,
    commit_every: Annotated[int, typer.Option(min=1, help="images per transaction")] = 256,
    as_json: JsonOpt = False,
) -> None:
    """Copy images from SOURCE into the workspace and catalog them; list what was refused."""
    from craftlora.catalog.ingest import ingest as run_ingest
    from craftlora.catalog.sources import SourceError

    if origin not in ("real", "synthetic"):
        fail(f"--origin must be 'real' or 'synthetic', not {origin!r}")
    with open_workspace(ws) as w:
        try:
            report = run_ingest(w, source, labels=labels, origin=origin, set_name=set_name,
                                progress=not as_json, commit_every=commit_every)
        except (SourceError, CatalogError) as e:
            fail(str(e))
    if as_json:
        print_json(report.to_json())
    else:
        console.print(f"ingested [bold]{report.ingested}[/] image(s) into set "
                      f"{report.set_name!r} ({report.already_present} already present) "
                      f"using {report.workers} worker process(es)")
        _problems("rejected", report.rejected, "path")
        _problems("label problems", report.label_problems, "line",
                  lambda p: f"{p['file']}:{p['line']}")
        _problems("sidecar problems", report.sidecar_problems, "path")
    if report.ingested == 0 and report.already_present == 0:
        raise typer.Exit(1)


def _problems(title: str, rows: list[dict], key: str, where: Any = None) -> None:
    if not rows:
        return
    table = Table(title=f"{title} ({len(rows)})", show_lines=False)
    table.add_column(key)
    table.add_column("reason")
    for r in rows:
        # a file name is text, never markup ("[/x].png" would break the table)
        table.add_row(escape(where(r) if where else str(r[key])), escape(r["reason"]))
    console.print(table)


@app.command(rich_help_panel="Data")
def stats(
    ws: WsArg,
    by: Annotated[str | None, typer.Option(help="attributes to combine, e.g. kiln,glaze")] = None,
    split: Annotated[str | None, typer.Option(help="train | val | test | none")] = None,
    origin: Annotated[str, typer.Option(help="real | synthetic | all")] = "real",
    out: Annotated[
        Path | None, typer.Option(help="chart folder (default WS/reports/stats)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts per attribute value and combination, imbalance figures, long-tail and Lorenz PNGs."""
    from craftlora.catalog.stats import workspace_stats, write_charts

    names = [b.strip() for b in by.split(",") if b.strip()] if by else None
    with open_workspace(ws, write=False) as w:
        try:
            result = workspace_stats(w, by=names, split=split,
                                     origin=None if origin == "all" else origin)
        except (ValueError, CatalogError) as e:
            fail(str(e))
        charts = out or w.root / "reports" / "stats"
        if out is None and w.catalog.readonly:
            result["charts"] = None  # a read-only workspace: figures only, unless --out
        else:
            try:
                result["charts"] = write_charts(result, charts)
            except OSError as e:
                fail(f"{charts}: cannot write the charts: {e.strerror or e}")
    if as_json:
        print_json(finite(result))
        return
    table = Table(title=f"{result['images']} image(s) by {' × '.join(result['by'])}")
    for a in result["by"]:
        table.add_column(a)
    table.add_column("count", justify="right")
    for c in result["combinations"][:25]:
        table.add_row(*[c["values"][a] for a in result["by"]], str(c["count"]))
    console.print(table)
    if len(result["combinations"]) > 25:
        console.print(f"… {len(result['combinations']) - 25} more combination(s)")
    f = finite(result)
    console.print(
        f"combinations observed {result['observed_combinations']} of "
        f"{result['possible_combinations']} possible; imbalance ratio {f['imbalance_ratio']}, "
        f"CV {_r(f['cv'])}, Gini {_r(f['gini'])}, normalized entropy "
        f"{_r(f['normalized_entropy'])}; unlabelled {result['unlabelled']}"
    )
    if result["charts"] is None:
        console.print("charts: not written (the workspace is read-only; give --out FOLDER)")
    else:
        console.print(f"charts: {result['charts']['long_tail']} and "
                      f"{result['charts']['lorenz']}")


def _r(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


@app.command(rich_help_panel="Data")
def split(
    ws: WsArg,
    seed: Annotated[
        int | None, typer.Option(help="default: [split] seed in craftlora.toml")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="reassign every image")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Assign train/val/test by combination size; existing assignments stay unless --reset."""
    from craftlora.catalog.split import assign_splits

    with open_workspace(ws) as w:
        try:
            summary = assign_splits(w, seed=w.config.split.seed if seed is None else seed,
                                    reset=reset)
        except CatalogError as e:
            fail(str(e))
    if as_json:
        print_json(summary)
        return
    c = summary["counts"]
    console.print(f"assigned {summary['assigned']} image(s); now train {c['train']}, "
                  f"val {c['val']}, test {c['test']} over {summary['combinations']} "
                  f"combination(s) (seed {summary['seed']})")
    for rule, v in sorted(summary["by_size"].items()):
        console.print(f"  {rule}: {v['groups']} combination(s), {v['images']} image(s)")
    if summary["off_target"]:
        console.print(f"  {len(summary['off_target'])} combination(s) keep earlier assignments "
                      "that differ from the rule for their size (use --reset to redo)")


@app.command(rich_help_panel="Data")
def captions(
    ws: WsArg,
    keep: Annotated[bool, typer.Option("--keep", help="keep existing captions")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a caption for every image from the workspace's caption template."""
    from craftlora.catalog.captions import write_captions

    with open_workspace(ws) as w:
        try:
            summary = write_captions(w, overwrite=not keep)
        except CatalogError as e:
            fail(str(e))
    if as_json:
        print_json(summary)
        return
    console.print(f"template: {summary['template']!r}")
    console.print(f"wrote {summary['written']} caption(s), kept {summary['kept']}, "
                  f"skipped {len(summary['skipped'])}")
    if summary["example"]:
        console.print(f"example: {summary['example']}")
    for s in summary["skipped"][:10]:
        console.print(f"  skipped {s['path']}: {s['reason']}")


@app.command(rich_help_panel="Data")
def export(
    ws: WsArg,
    out: Annotated[Path, typer.Argument(help="output folder")],
    fmt: Annotated[str, typer.Option("--format", help="kohya | imagefolder | csv")] = "kohya",
    split: Annotated[str | None, typer.Option(help="train | val | test | none")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export images with captions/labels for other tools."""
    from craftlora.catalog.export import export as run_export

    with open_workspace(ws, write=False) as w:
        try:
            n = run_export(w, fmt, out, split=split)
        except (ValueError, CatalogError) as e:
            fail(str(e))
        except OSError as e:
            fail(f"{e.filename or out}: export failed: {e.strerror or e}")
    if as_json:
        print_json({"format": fmt, "out": str(out), "split": split, "exported": n})
    else:
        console.print(f"exported {n} image(s) as {fmt} to {out}")
