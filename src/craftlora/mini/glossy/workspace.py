"""The glossy world as a workspace: render, catalog, split and caption (idempotent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from craftlora.catalog.captions import write_captions
from craftlora.catalog.ingest import ingest
from craftlora.catalog.split import assign_splits
from craftlora.catalog.workspace import Workspace
from craftlora.config import CONFIG_NAME
from craftlora.mini.glossy.render import render_glossy
from craftlora.mini.glossy.world import workspace_config


def build_glossy_workspace(ws_dir: Path, render_dir: Path, *, n: int, seed: int, size: int,
                           workers: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Render ``n`` scenes into ``render_dir`` (kept: it holds the truth) and catalog the glossy
    images in ``ws_dir``, split and captioned. A rerun ingests nothing new."""
    labels = render_glossy(render_dir, n=n, seed=seed, size=size, workers=workers,
                           progress=progress)
    ws_dir = Path(ws_dir)
    ws = Workspace.open(ws_dir) if (ws_dir / CONFIG_NAME).is_file() else \
        Workspace.create(ws_dir, workspace_config())
    with ws:
        rep = ingest(ws, labels.parent, labels=labels, progress=progress)
        split = assign_splits(ws, seed=seed)
        caps = write_captions(ws)
    return {"workspace": str(ws_dir), "render": str(render_dir),
            "images": rep.ingested + rep.already_present, "rejected": len(rep.rejected),
            "split": split["counts"], "caption_example": caps.get("example")}
