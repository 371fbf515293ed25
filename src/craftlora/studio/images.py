"""Images reach the browser by catalog id only: ``/img/{id}`` looks the file up in the catalog,
confines it to the workspace and serves it; no route takes a path from the browser."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

from craftlora.catalog.store import CatalogError
from craftlora.catalog.workspace import WorkspaceError, confine
from craftlora.studio.context import StudioContext

MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp",
               ".bmp": "image/bmp", ".tif": "image/tiff", ".gif": "image/gif",
               ".jpeg": "image/jpeg", ".tiff": "image/tiff", ".jpe": "image/jpeg"}


def add_image_route(app: FastAPI, ctx: StudioContext,
                    allowed: Callable[[Request], bool]) -> None:
    """``GET /img/{image_id}``: the bytes of a catalog image (``allowed`` checks the login)."""

    @app.get("/img/{image_id}")
    def image(image_id: int, request: Request) -> Response:
        if not allowed(request):
            raise HTTPException(status_code=401, detail="not logged in")
        try:
            rec = ctx.catalog.get(image_id)
            path = confine(ctx.root, rec.path)
        except (CatalogError, WorkspaceError) as e:
            raise HTTPException(status_code=404, detail="no such image") from e
        media = MEDIA_TYPES.get(path.suffix.lower())
        if media is None or not path.is_file():
            raise HTTPException(status_code=404, detail="no such image")
        return Response(path.read_bytes(), media_type=media,
                        headers={"Cache-Control": "private, max-age=3600"})
