"""`craftlora mini glossy`: lacquer objects under studio lights, with exact highlight truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import console, fail, print_json
from craftlora.cli.mini import JsonOpt, Workers, mini


@mini.command()
def glossy(
    out: Annotated[Path, typer.Argument(help="output folder")],
    n: Annotated[int, typer.Option("--n", min=1, help="images")] = 240,
    seed: Annotated[int, typer.Option(help="same seed, same bytes")] = 0,
    size: Annotated[int, typer.Option(min=16, help="image side in pixels (even)")] = 64,
    workers: Workers = None,
    as_json: JsonOpt = False,
) -> None:
    """Render red and black lacquer boxes, trays and panels with studio highlights.

    OUT/images holds the glossy renders and labels.csv (ingest it); OUT/truth/clean the same
    scenes without highlights; OUT/truth/mask the exact highlight coverage. Score a reduction
    with `craftlora specular OUT`.
    """
    from craftlora.mini.glossy.render import render_glossy

    try:
        labels = render_glossy(out, n=n, seed=seed, size=size, workers=workers,
                               progress=not as_json)
    except (ValueError, OSError) as e:
        fail(e)
    result = {"out": str(out), "labels": str(labels), "images": n, "seed": seed, "size": size}
    if as_json:
        print_json(result)
    else:
        console.print(f"wrote {n} glossy scene(s) with clean renders and highlight masks to "
                      f"{out} (labels: {labels})")
