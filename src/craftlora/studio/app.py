"""The studio app: one page with the review room, the design room and the usability page,
mounted on a FastAPI server that also serves catalog images by id."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import FastAPI, Request
from starlette.routing import Mount

from craftlora.studio.context import StudioContext
from craftlora.studio.design import DesignEngine
from craftlora.studio.design_room import build_design_room
from craftlora.studio.guard import acquire_lock, check_host, release_lock
from craftlora.studio.images import add_image_route
from craftlora.studio.review_room import KEYS_JS, build_review_room
from craftlora.studio.sus_page import build_sus_page
from craftlora.studio.worker import Worker

CSS = """
#rv-image { width: 100%; max-width: 640px; image-rendering: pixelated; }
.rv-stage { display: flex; gap: 12px; }
.rv-reals { display: flex; flex-direction: column; gap: 6px; width: 30%; }
.rv-real { width: 100%; image-rendering: pixelated; }
"""


def build_blocks(ctx: StudioContext, engine: DesignEngine) -> gr.Blocks:
    title = f"craftlora studio · {ctx.config.name}"
    with gr.Blocks(title=title, analytics_enabled=False) as blocks:
        gr.Markdown(f"## craftlora studio · `{ctx.config.name}`")
        with gr.Tabs():
            with gr.Tab("Review", id="review", elem_id="tab-review"):
                build_review_room(ctx)
            with gr.Tab("Design", id="design", elem_id="tab-design"):
                sessions, refresh = build_design_room(ctx, engine, Worker())
            with gr.Tab("Usability (SUS)", id="sus", elem_id="tab-sus"):
                team, team_text = build_sus_page(ctx)
        # what others wrote since the page was built
        blocks.load(lambda: (refresh(), team_text()), None, [sessions, team])
    return blocks


def create_app(ctx: StudioContext, auth: tuple[str, str] | None = None,
               engine: DesignEngine | None = None) -> FastAPI:
    """The whole server: image route first, then the Gradio page at ``/``."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    gradio_app: list[object] = []

    def allowed(request: Request) -> bool:
        if auth is None:
            return True
        sub = gradio_app[0]
        token = request.cookies.get(f"access-token-{sub.cookie_id}") or request.cookies.get(
            f"access-token-unsecure-{sub.cookie_id}")
        return sub.tokens.get(token) is not None

    add_image_route(app, ctx, allowed)
    blocks = build_blocks(ctx, engine or DesignEngine(ctx))
    blocks.queue(default_concurrency_limit=2)
    app = gr.mount_gradio_app(app, blocks, path="/", auth=auth, head=KEYS_JS, css=CSS,
                              footer_links=[], run_history=False, ssr_mode=False,
                              max_file_size="20mb")
    gradio_app.extend(r.app for r in app.routes if isinstance(r, Mount))
    return app


def serve(root: str | Path, host: str = "127.0.0.1", port: int = 7860,
          auth: tuple[str, str] | None = None, model: str = "mini",
          controlnet: str | None = None) -> None:
    """Run the studio until interrupted; one studio per workspace (lock file). The model
    loads on the first design round and stays loaded."""
    check_host(host, auth)
    ctx = StudioContext(root)
    lock = acquire_lock(ctx.root)
    try:
        app = create_app(ctx, auth, DesignEngine(ctx, model, controlnet))
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        release_lock(lock)
        ctx.close()
