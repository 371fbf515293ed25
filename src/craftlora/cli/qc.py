"""`craftlora qc WS --set NAME`: automatic quality control; `craftlora specular`: highlight
reduction I·(1 − α·M_spec) for glossy objects, with an example figure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import CHECK, DATA, app, console, fail, print_json


@app.command(rich_help_panel=CHECK)
def qc(
    ws: Annotated[Path, typer.Argument(help="workspace folder")],
    set_name: Annotated[str, typer.Option("--set", help="catalog set to check")],
    judge: Annotated[Path | None, typer.Option(help="judge checkpoint: enables attribute "
                                                     "agreement and domain features")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
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
            summary = run_qc(w, set_name, judge=judge, progress=not as_json)
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


@app.command(rich_help_panel=DATA)
def specular(
    images: Annotated[list[Path], typer.Argument(help="image files")],
    out: Annotated[Path | None, typer.Option(help="folder for corrected PNGs")] = None,
    figure: Annotated[Path | None, typer.Option(help="PNG: original | mask | corrected")] = None,
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="attenuation α")] = 0.7,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Specular highlight reduction I·(1 − α·M_spec) (the lacquer study's preprocessing)."""
    from craftlora.data.atomic import atomic_write_bytes
    from craftlora.data.imageio import BadImageError, load_rgb
    from craftlora.data.specular import SpecularConfig, example_figure, reduce_specular
    from craftlora.data.specular import specular_mask as mask_of

    cfg = SpecularConfig(alpha=alpha)
    loaded, rows = [], []
    for p in images:
        try:
            im = load_rgb(p)
        except BadImageError as e:
            rows.append({"image": str(p), "error": e.reason})
            continue
        loaded.append(im)
        row = {"image": str(p), "mask_mean": float(mask_of(im, cfg).mean())}
        if out is not None:
            import io

            buf = io.BytesIO()
            reduce_specular(im, cfg).save(buf, format="PNG")
            target = out / (p.stem + ".png")
            atomic_write_bytes(target, buf.getvalue())
            row["output"] = str(target)
        rows.append(row)
    if figure is not None and loaded:
        example_figure(loaded[:6], str(figure), cfg)
    result = {"alpha": alpha, "images": rows, "figure": str(figure) if figure else None}
    if as_json:
        print_json(result)
    else:
        for r in rows:
            console.print(r)
    bad = [r for r in rows if "error" in r]
    if bad:
        fail(f"{len(bad)} of {len(rows)} images not processed, e.g. {bad[0]['image']}: "
             f"{bad[0]['error']}", code=1)
