"""`craftlora mini kiln | generic | sheet | stitch`: the embedded procedural worlds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import WORLDS, app, console, fail, print_json

mini = typer.Typer(help="The embedded mini world: procedural datasets and contact sheets.",
                   no_args_is_help=True)
app.add_typer(mini, name="mini", rich_help_panel=WORLDS)

JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]
Workers = Annotated[int | None, typer.Option(help="processes (default: up to 2)")]


@mini.command()
def kiln(
    out: Annotated[Path, typer.Argument(help="output folder")],
    n: Annotated[int, typer.Option("--n", min=0, help="images (ignored with --combos)")] = 6000,
    seed: Annotated[int, typer.Option(help="same seed, same bytes")] = 0,
    size: Annotated[int, typer.Option(min=16, help="image side in pixels (even)")] = 64,
    combos: Annotated[
        Path | None,
        typer.Option(help="CSV with header dynasty,kiln,glaze,type,count: render exactly these "
                          "combinations, each `count` times, in file order"),
    ] = None,
    allow_invalid: Annotated[
        bool, typer.Option("--allow-invalid", help="let --combos break historical constraints")
    ] = False,
    workers: Workers = None,
    as_json: JsonOpt = False,
) -> None:
    """Render the long-tailed mini-kiln dataset: PNGs, labels.csv, one annotation JSON per image.

    Example combos file:

        dynasty,kiln,glaze,type,count
        Song,Guan,celadon,washer,50
        Yuan,Jingdezhen,white,meiping,20
    """
    from craftlora.mini.kiln import ComboError
    from craftlora.mini.render import read_combos, render_kiln

    try:
        plan = read_combos(combos, allow_invalid=allow_invalid) if combos else None
        labels = render_kiln(out, n=n, seed=seed, size=size, combos=plan, workers=workers,
                             progress=not as_json, allow_invalid=allow_invalid)
    except (ComboError, ValueError, OSError) as e:
        fail(e)
    rows = labels.read_text(encoding="utf-8").splitlines()[1:]
    combo_counts = Counter(tuple(r.split(",")[1:]) for r in rows)
    result = {"out": str(out), "labels": str(labels), "images": len(rows),
              "combinations": len(combo_counts), "seed": seed, "size": size}
    if as_json:
        print_json(result)
    else:
        console.print(f"wrote {len(rows)} image(s), {len(combo_counts)} combination(s) "
                      f"to {out} (labels: {labels})")


@mini.command()
def generic(
    out: Annotated[Path, typer.Argument(help="output folder")],
    n: Annotated[int, typer.Option("--n", min=0, help="images")] = 6000,
    seed: Annotated[int, typer.Option(help="same seed, same bytes")] = 0,
    size: Annotated[int, typer.Option(min=16, help="image side in pixels (even)")] = 64,
    workers: Workers = None,
    as_json: JsonOpt = False,
) -> None:
    """Render everyday procedural scenes with plain-English captions (captions.csv + .txt)."""
    from craftlora.mini.generic import render_generic

    try:
        captions = render_generic(out, n=n, seed=seed, size=size, workers=workers,
                                  progress=not as_json)
    except (ValueError, OSError) as e:
        fail(e)
    result = {"out": str(out), "captions": str(captions), "images": n, "seed": seed}
    if as_json:
        print_json(result)
    else:
        console.print(f"wrote {n} scene(s) to {out} (captions: {captions})")


@mini.command()
def sheet(
    folder: Annotated[Path, typer.Argument(help="a rendered world (has labels.csv)")],
    out: Annotated[Path, typer.Argument(help="output PNG")],
    per_row: Annotated[int, typer.Option(min=1, help="images per row")] = 8,
    cell: Annotated[int, typer.Option(min=8, help="thumbnail side in pixels")] = 64,
    as_json: JsonOpt = False,
) -> None:
    """Contact sheet: one row per attribute value."""
    from craftlora.mini.sheet import SheetError, make_sheet

    try:
        result = make_sheet(folder, out, per_row=per_row, cell=cell)
    except (SheetError, OSError) as e:
        fail(e)
    if as_json:
        print_json(result)
        return
    console.print(f"wrote {out}: {result['rows']} rows")
    for s in result["skipped"]:
        console.print(f"[yellow]skipped[/] {s['file']}: {s['reason']}")


@mini.command()
def stitch(
    out: Annotated[Path, typer.Argument(help="output folder")],
    per_motif: Annotated[int, typer.Option(min=1, help="designs per motif")] = 3,
    seed: Annotated[int, typer.Option(help="same seed, same bytes")] = 0,
    size: Annotated[int, typer.Option(min=16, help="image side in pixels (even)")] = 64,
    as_json: JsonOpt = False,
) -> None:
    """Render the stitch world: flat designs, masks and embroidery in four stitch styles."""
    from craftlora.mini.stitch.render import render_stitch
    from craftlora.mini.stitch.styles import STYLES

    try:
        labels = render_stitch(out, per_motif=per_motif, seed=seed, size=size)
    except (ValueError, OSError) as e:
        fail(e)
    n = len(labels.read_text(encoding="utf-8").splitlines()) - 1
    result = {"out": str(out), "labels": str(labels), "designs": n, "styles": list(STYLES),
              "seed": seed, "size": size}
    if as_json:
        print_json(result)
    else:
        console.print(f"wrote {n} design(s) x {len(STYLES)} styles to {out} (labels: {labels})")
