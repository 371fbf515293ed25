"""`craftlora init`: create a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.catalog.workspace import Workspace, WorkspaceError, parse_attribute_spec
from craftlora.cli.app import app, console, fail, print_json
from craftlora.config import ConfigError, WorkspaceConfig


@app.command(rich_help_panel="Workspace")
def init(
    ws: Annotated[Path, typer.Argument(help="workspace folder to create")],
    attribute: Annotated[
        list[str] | None,
        typer.Option("--attribute", "-a", help="NAME=v1,v2,... (value:phrase allowed); repeat"),
    ] = None,
    template: Annotated[
        str, typer.Option(help="caption template, e.g. '{type}, {glaze} glaze'")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create WS/craftlora.toml and WS/catalog.sqlite."""
    try:
        attrs = dict(parse_attribute_spec(s) for s in attribute or [])
        cfg = WorkspaceConfig(name=ws.name, caption_template=template, attributes=attrs)
        with Workspace.create(ws, cfg) as w:
            version = w.catalog.schema_version
    except (ConfigError, WorkspaceError, ValueError) as e:
        fail(str(e))
    if as_json:
        print_json({"workspace": str(ws), "attributes": list(attrs), "schema_version": version})
    else:
        console.print(f"created workspace [bold]{ws}[/] with attributes {list(attrs) or 'none'}")
