"""`craftlora weights list|add|check`: this machine's local feature-network weights.

The registry is a small JSON file: ``$CRAFTLORA_WEIGHTS`` if set, else
``~/.config/craftlora/weights.json`` (``$XDG_CONFIG_HOME`` honoured). FID, LPIPS, the perceptual
loss and the CLIP score read their weights from it; nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from craftlora.cli.app import WORKSPACE, app, console, fail, print_json

weights = typer.Typer(help="Register and check local feature-network weights (FID, LPIPS, "
                           "perceptual loss, CLIP score).", no_args_is_help=True)
app.add_typer(weights, name="weights", rich_help_panel=WORKSPACE)

JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]


@weights.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """The kinds craftlora knows and the file registered for each."""
    from craftlora.metrics.weights import KINDS, read_registry, registry_path

    try:
        entries = read_registry()
    except ValueError as e:
        fail(e)
    rows = [{"kind": k, "what": w, **entries.get(k, {})} for k, w in KINDS.items()]
    if as_json:
        print_json({"registry": str(registry_path()), "weights": rows})
        return
    console.print(f"registry: {registry_path()}")
    for r in rows:
        where = (escape(f"{r['path']}  sha256 {r['sha256'][:12]}") if "path" in r
                 else "[yellow]not registered[/]")
        console.print(f"  {r['kind']:<10} {where}\n             {r['what']}")


@weights.command("add")
def add_cmd(
    kind: Annotated[str, typer.Argument(help="vgg19, vgg16, alexnet, inception or clip")],
    path: Annotated[Path, typer.Argument(help="the weights file (.safetensors or .pth), or "
                                              "the CLIP model folder")],
    as_json: JsonOpt = False,
) -> None:
    """Check that PATH is a KIND network's weights, hash it and record it."""
    from craftlora.metrics.weights import add_weights

    try:
        entry = add_weights(kind, path)
    except (OSError, ValueError) as e:
        fail(e)
    if as_json:
        print_json({"kind": kind, **entry})
    else:
        console.print(f"{kind}: {entry['path']} (sha256 {entry['sha256'][:12]}) registered")


@weights.command("check")
def check_cmd(as_json: JsonOpt = False) -> None:
    """Re-hash and load every registered entry; exit 1 if any fails."""
    from craftlora.metrics.weights import check_weights

    try:
        rows = check_weights()
    except ValueError as e:
        fail(e)
    if as_json:
        print_json({"weights": rows})
    else:
        if not rows:
            console.print("no weights registered (craftlora weights add KIND PATH)")
        for r in rows:
            mark = "[green]ok[/]" if r["status"] == "ok" else f"[red]{escape(r['status'])}[/]"
            console.print(f"  {r['kind']:<10} {escape(r['path'])}: {mark}")
    if any(r["status"] != "ok" for r in rows):
        raise typer.Exit(1)
