"""`craftlora studio WS`: the web studio (review room, design room, usability page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import CHECK, app, console, fail, model_source


@app.command(rich_help_panel=CHECK)
def studio(
    ws: Annotated[Path, typer.Argument(help="workspace folder")],
    host: Annotated[str, typer.Option(help="address to bind; other than loopback needs --auth")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 7860,
    auth: Annotated[str | None, typer.Option(help="USER:PASS login for the page")] = None,
    model: Annotated[str, typer.Option(help="design room model: 'mini', a diffusers folder "
                                            "or a .safetensors file")] = "mini",
    controlnet: Annotated[str | None, typer.Option(
        help="ControlNet for sketches (a diffusers folder or .safetensors; the mini base "
             "uses its shipped one)")] = None,
) -> None:
    """Serve the studio for reviewers and designers on one workspace (one studio at a time)."""
    from craftlora.catalog.workspace import WorkspaceError
    from craftlora.config import ConfigError
    from craftlora.studio.guard import StudioError, check_host, parse_auth

    try:
        login = parse_auth(auth)
        check_host(host, login)
        from craftlora.studio.app import serve

        console.print(f"craftlora studio on http://{host}:{port} (Ctrl+C stops it)")
        serve(ws, host=host, port=port, auth=login, model=model_source(model),
              controlnet=None if controlnet is None else model_source(controlnet))
    except (StudioError, WorkspaceError, ConfigError, OSError) as e:
        fail(e)
