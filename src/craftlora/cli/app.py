"""The root typer app and the shared output helpers every command module uses."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    name="craftlora",
    help="LoRA workbench for craft and heritage imagery.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def print_json(obj: Any) -> None:
    """Machine-readable output for ``--json``: one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def fail(message: str, code: int = 2) -> None:
    """Print a clear error to stderr and exit non-zero."""
    # soft_wrap: a long path must stay one string (greppable, copyable), never be broken by width
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.callback()
def _root() -> None:
    """LoRA workbench for craft and heritage imagery: catalog, train, generate, filter, measure."""
