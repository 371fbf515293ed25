"""`craftlora demo character`: the character workflow on the mini character (CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import console, fail, print_json
from craftlora.cli.demo import demo_app


@demo_app.command("character")
def character(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("demo-character"),
    preset: Annotated[str, typer.Option(hidden=True, help="full, quick or tiny")] = "full",
    as_json: Annotated[bool, typer.Option("--json", help="print character.json")] = False,
) -> None:
    """spec → prompts → candidates → selection → tags → LoRA → eval; writes
    OUT/character.json, OUT/character.html and OUT/tags.png."""
    from craftlora.demo.character import PRESETS, run_character_demo

    if preset not in PRESETS:
        fail(f"--preset must be one of {sorted(PRESETS)}")
    try:
        summary = run_character_demo(out, PRESETS[preset], console)
    except (ValueError, RuntimeError, OSError) as e:
        fail(str(e))
    if as_json:
        print_json(summary)
    else:
        console.print(summary)
