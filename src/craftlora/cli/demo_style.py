"""`craftlora demo style`: the one-shot style study on the stitch world."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import console, fail, model_source
from craftlora.cli.demo import demo_app


@demo_app.command("style")
def demo_style(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("demo-style"),
    preset: Annotated[str, typer.Option(help="full, quick or tiny (tests)")] = "full",
    model: Annotated[str, typer.Option(help="base model")] = "mini",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Contrastive style-block LoRA vs whole / two-block / no-stage2 / all / random blocks on
    held-out stitch designs; writes OUT/style.json and OUT/style.html (resumable)."""
    from craftlora.demo.style import FIGURES, PRESETS, run_style_demo

    if preset not in PRESETS:
        fail(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    try:
        res = run_style_demo(out, preset=preset, model=model_source(model), seed=seed)
    except (ValueError, OSError) as e:
        fail(e)
    console.print(f"style blocks: {', '.join(res['blocks'])}; "
                  f"content network: {res['content_network']}")
    console.print("method".ljust(14) + "".join(f.rjust(16) for f in FIGURES))
    for m, v in res["methods"].items():
        console.print(m.ljust(14) + "".join(f"{v[f]:16.4f}" for f in FIGURES))
    console.print(f"wall {res['wall_s']} s; wrote {out / 'style.json'}, {out / 'style.html'}")
