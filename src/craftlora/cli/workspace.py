"""`craftlora init` (create a workspace) and `craftlora doctor` (check and rebuild its catalog)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.catalog.workspace import Workspace, WorkspaceError, parse_attribute_spec
from craftlora.cli.app import app, console, fail, print_json
from craftlora.config import CONFIG_NAME, ConfigError, WorkspaceConfig, load_config


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
    from_config: Annotated[
        Path | None,
        typer.Option("--from", help=f"start from an existing {CONFIG_NAME} (copied as is)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Create WS/craftlora.toml and WS/catalog.sqlite."""
    from craftlora.data.captions import CaptionError, check_template

    try:
        if from_config is not None:
            if attribute or template:
                fail("--from takes the attributes and template from the file; "
                     "drop --attribute/--template")
            cfg = load_config(from_config)
        else:
            attrs = dict(parse_attribute_spec(s) for s in attribute or [])
            cfg = WorkspaceConfig(name=ws.name, caption_template=template, attributes=attrs)
        check_template(cfg)
        with Workspace.create(ws, cfg) as w:
            version = w.catalog.schema_version
    except (ConfigError, WorkspaceError, CaptionError) as e:
        fail(str(e))
    except ValueError as e:  # pydantic: the first fault, in one line
        fail(f"{ws}: invalid workspace config: {_first_error(e)}")
    names = list(cfg.attributes)
    if as_json:
        print_json({"workspace": str(ws), "attributes": names, "schema_version": version})
    else:
        console.print(f"created workspace [bold]{ws}[/] with attributes {names or 'none'}")


def _first_error(e: ValueError) -> str:
    errors = getattr(e, "errors", None)
    if callable(errors):
        err = errors()[0]
        return f"{'.'.join(map(str, err['loc'])) or '(top level)'}: {err['msg']}"
    return str(e).splitlines()[0]


@app.command(rich_help_panel="Workspace")
def doctor(
    ws: Annotated[Path, typer.Argument(help="workspace folder")],
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="rebuild the catalog from the image files and "
                           "their records (a damaged catalog is moved aside, not deleted)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the catalog against the files in WS/images; with --rebuild, repair it from them."""
    from craftlora.catalog.doctor import check
    from craftlora.catalog.doctor import rebuild as run_rebuild

    if not (ws / CONFIG_NAME).is_file():
        fail(f"{ws}: not a craftlora workspace (no {CONFIG_NAME})")
    try:
        result = run_rebuild(ws) if rebuild else check(ws)
    except (ConfigError, WorkspaceError) as e:
        fail(str(e))
    except OSError as e:
        fail(f"{e.filename or ws}: cannot {'rebuild' if rebuild else 'check'}: "
             f"{e.strerror or e}")
    if as_json:
        print_json(result)
    elif rebuild:
        moved = result["moved_aside"]
        verb = "rebuilt" if moved else "brought up to date"
        console.print(f"catalog {verb}: {result['images_in_catalog']} image(s), "
                      f"{result['added']} added ({result['from_records']} from their records, "
                      f"{result['salvaged_rows']} split/caption rows salvaged)"
                      + (f"; the damaged catalog is kept as {moved}" if moved else ""),
                      soft_wrap=True)
    else:
        console.print(f"catalog: {result['catalog']}")
        if result["images_in_catalog"] is not None:
            console.print(f"{result['images_in_catalog']} image(s) in the catalog, "
                          f"{result['files']} file(s) in images/, "
                          f"{len(result['missing_files'])} missing, "
                          f"{len(result['uncatalogued_files'])} uncatalogued, "
                          f"{result['without_record']} without a record")
    if rebuild and result["problems"]:
        p = result["problems"]
        fail(f"{ws}: {len(p)} file(s) not added, first {p[0]['path']}: {p[0]['reason']}", 1)
    if not rebuild and not result["ok"]:
        fail(result["catalog"] if result["catalog"] != "ok" else
             f"{ws}: {len(result['missing_files'])} catalogued file(s) missing, first "
             f"{result['missing_files'][0]}", 1)
