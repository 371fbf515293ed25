"""Captions for every image of a workspace from its caption template (``data.captions``)."""

from __future__ import annotations

from typing import Any

from craftlora.catalog.workspace import Workspace
from craftlora.data.captions import CaptionError, render_caption


def write_captions(ws: Workspace, *, overwrite: bool = True) -> dict[str, Any]:
    """Render a caption for every image that has the attributes its template needs.

    Images lacking a needed attribute keep their caption (for instance one read from a kohya
    ``.txt`` file) and are listed under ``skipped``. With ``overwrite=False`` existing captions
    are kept.
    """
    captions: dict[int, str] = {}
    skipped: list[dict[str, Any]] = []
    kept = 0
    for rec in ws.catalog.images():
        if rec.caption and not overwrite:
            kept += 1
            continue
        try:
            captions[rec.id] = render_caption(ws.config, rec.attributes)
        except CaptionError as e:
            skipped.append({"id": rec.id, "path": rec.path, "reason": str(e)})
    ws.catalog.set_captions(captions)
    example = next(iter(captions.values()), None)
    return {
        "template": ws.config.template(),
        "written": len(captions),
        "kept": kept,
        "skipped": skipped,
        "example": example,
    }
