"""Studio test helpers: add a synthetic set, run a live studio server in a thread."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn
from glaze_type_world import COLOURS, SHAPES, add

from craftlora.catalog.workspace import Workspace
from craftlora.studio.app import create_app
from craftlora.studio.context import StudioContext

CHROMIUM = "/usr/bin/chromium"
SYNTHETIC_SET = "syn"


def add_synthetic(ws: Workspace, n: int, set_name: str = SYNTHETIC_SET, seed: int = 1) -> list[int]:
    rng = np.random.default_rng(seed)
    combos = [(g, k) for g in COLOURS for k in SHAPES]
    return [add(ws, *combos[i % len(combos)], rng, split="train", origin="synthetic",
                set_name=set_name) for i in range(n)]


class LiveStudio:
    def __init__(self, root: Path, auth: tuple[str, str] | None = None):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ctx = StudioContext(root)
        config = uvicorn.Config(create_app(self.ctx, auth), host="127.0.0.1", port=self.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the studio server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.ctx.close()
