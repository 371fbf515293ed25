"""The root typer app, its help panels, the one-line error handler and the shared output helpers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from craftlora.cli.errors import describe
from craftlora.models.presets import MINI_NAMES

# Help panels, in the order of the loop; every command names one with rich_help_panel=.
WORKSPACE = "Workspace"
DATA = "Data"
TRAIN = "Train"
GENERATE = "Generate"
CHECK = "Check"
MEASURE = "Measure"
WORLDS = "Worlds"
PANELS = (WORKSPACE, DATA, TRAIN, GENERATE, CHECK, MEASURE, WORLDS)

DEBUG_ENV = "CRAFTLORA_DEBUG"
# a validation message names the field and the fault; pydantic's documentation URL is noise
os.environ.setdefault("PYDANTIC_ERRORS_INCLUDE_URL", "0")


class LoopGroup(TyperGroup):
    """The root command group: lists commands panel by panel, in the order of the loop, and
    turns an exception no command foresaw into one ``error:`` line (a traceback with --debug)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _literal_help(self)

    def list_commands(self, ctx: typer.Context) -> list[str]:
        names = super().list_commands(ctx)

        def rank(name: str) -> int:
            panel = getattr(self.commands[name], "rich_help_panel", None)
            return PANELS.index(panel) if panel in PANELS else len(PANELS)

        return sorted(names, key=rank)  # stable: registration order within a panel

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):  # usage errors, --help, fail()
            raise
        except BrokenPipeError:  # `craftlora … | head`: the reader left; nothing to report
            _silence_stdout()
            raise typer.Exit(141) from None
        except Exception as e:
            if ctx.params.get("debug") or debug_requested():
                raise
            fail(f"{describe(e)} (rerun with --debug for the traceback)")


def _literal_help(cmd: Any) -> None:
    """Help texts are plain text: escape what Rich would read as markup (``[tiers]`` is a TOML
    table, not a style tag) in this command, its parameters and every command below it."""
    for attr in ("help", "short_help", "epilog"):
        if getattr(cmd, attr, None):
            setattr(cmd, attr, escape(getattr(cmd, attr)))
    for param in getattr(cmd, "params", []):
        if getattr(param, "help", None):
            param.help = escape(param.help)
    for sub in getattr(cmd, "commands", {}).values():
        _literal_help(sub)


app = typer.Typer(
    name="craftlora",
    help="LoRA workbench for craft and heritage imagery.",
    cls=LoopGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. under a test runner)
        pass


def debug_requested() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def print_json(obj: Any) -> None:
    """Machine-readable output for ``--json``: one JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def report(obj: Any, as_json: bool, line: str) -> None:
    """A command's result: the JSON document with ``--json``, else one line for people."""
    if as_json:
        print_json(obj)
    else:
        console.print(line)


def fail(message: str | BaseException, code: int = 2) -> None:
    """Print a clear error (a message, or an exception described) as one line on stderr and
    exit non-zero."""
    text = describe(message) if isinstance(message, BaseException) else " ".join(message.split())
    # soft_wrap: a long path must stay one string (greppable, copyable), never be broken by width
    err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def model_source(source: str) -> str:
    """A model or ControlNet source from the shell: a path that exists becomes absolute (so it
    means the same from any folder); ``mini`` and hub ids stay as they are."""
    path = Path(source).expanduser()
    if source in MINI_NAMES or not path.exists():
        return source
    return str(path.absolute())


@app.callback()
def _root(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar=DEBUG_ENV, help=f"show the traceback of an error (or {DEBUG_ENV}=1)"
        ),
    ] = False,
) -> None:
    """LoRA workbench for craft and heritage imagery: catalog, train, generate, filter, measure."""
