"""Studio responsiveness: review keypress → next image shown, in headless Chromium, with 5,000
images in the queue; and the wall time of a first and a second design round.

    .venv/bin/python -m bench.studio [--n 5000] [--presses 100] [--out bench-out]
                                     [--screenshots docs]

Setup (not timed): a workspace with ``--n`` synthetic 32×32 PNGs over 6 attribute combinations
and 24 real ones; a studio server in this process; Debian's Chromium through Playwright.
Timed: (1) for each of ``--presses`` accept keys, from the key press to the next image element
in the page with its picture decoded (target: median under 300 ms); (2) two design rounds of
4 candidates on the mini base with a sketch through the shipped ControlNet — the first loads
the pipeline, the second reuses it. Prints one JSON document and writes OUT/studio.json.
With ``--screenshots DIR``, saves the review room, the design room (the bench's session
reloaded) and the SUS page as PNGs there (the README's pictures).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from PIL import Image, ImageDraw

from craftlora.catalog.workspace import Workspace
from craftlora.config import Attribute, WorkspaceConfig
from craftlora.studio.app import create_app
from craftlora.studio.context import StudioContext
from craftlora.studio.design import DesignEngine, RoundRequest, read_sketch
from craftlora.studio.sessions import new_session
from craftlora.studio.worker import Worker

TARGET_MS = 300.0
CHROMIUM = "/usr/bin/chromium"
COLOURS = {"white": (235, 235, 235), "celadon": (120, 170, 130), "black": (20, 20, 20)}
SHAPES = ("bowl", "vase")


def _png(rng: np.random.Generator, colour: tuple[int, int, int]) -> bytes:
    a = np.clip(rng.normal(128, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
    a[8:24, 8:24] = colour
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _setup(root: Path, n: int) -> Workspace:
    cfg = WorkspaceConfig(attributes={"glaze": Attribute(values=list(COLOURS)),
                                      "type": Attribute(values=list(SHAPES))})
    ws = Workspace.create(root / "ws", cfg)
    rng = np.random.default_rng(0)
    combos = [(g, k) for g in COLOURS for k in SHAPES]
    (ws.root / "images").mkdir()
    with ws.catalog.transaction():
        for i in range(n + 24):
            glaze, kind = combos[i % len(combos)]
            data = _png(rng, COLOURS[glaze])
            sha = hashlib.sha256(data).hexdigest()
            (ws.root / f"images/{sha}.png").write_bytes(data)
            real = i < 24
            ws.catalog.add_image(sha256=sha, path=f"images/{sha}.png", width=32, height=32,
                                 origin="real" if real else "synthetic",
                                 set_name=None if real else "syn",
                                 split="train", attributes={"glaze": glaze, "type": kind})
    return ws


def _serve(ctx: StudioContext) -> tuple[uvicorn.Server, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def _review_page(url: str, reviewer: str) -> Iterator[Any]:
    """Debian's Chromium on the studio, the review queue started by ``reviewer``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.fill("#rv-reviewer input, #rv-reviewer textarea", reviewer)
        page.click("#rv-start")
        try:
            yield page
        finally:
            browser.close()


def review_latency(url: str, presses: int) -> list[float]:
    shown = ("p => { const i = document.querySelector(`#rv-image[data-pos='${p}']`);"
             " return i !== null && i.complete && i.naturalWidth > 0; }")
    with _review_page(url, "bench") as page:
        page.wait_for_function(shown, arg=0, timeout=60_000)
        times = []
        for k in range(presses):
            t = time.perf_counter()
            page.keyboard.press("a")
            page.wait_for_function(shown, arg=k + 1, timeout=30_000, polling="raf")
            times.append((time.perf_counter() - t) * 1000)
    return times


def _round(engine: DesignEngine, worker: Worker, session: int, index: int, png: bytes
           ) -> dict[str, Any]:
    sketch = read_sketch(png, "bench sketch", engine.size)  # the first call loads the model
    req = RoundRequest(attributes={"glaze": "celadon", "type": "bowl"}, n=4, steps=8,
                       seed=10 * index)
    job = worker.start(lambda j: engine.run_round(session, index, req, sketch, None, j))
    job.thread.join()
    if job.error is not None:
        raise job.error
    return job.result


def design_rounds(ctx: StudioContext) -> dict[str, float | int]:
    engine, worker = DesignEngine(ctx), Worker()
    session, state = new_session(ctx, "bench", "bench")
    im = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(im).ellipse((50, 50, 206, 206), outline="black", width=6)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    out: dict[str, float | int] = {}
    for index in (0, 1):
        t = time.perf_counter()
        state["rounds"].append(_round(engine, worker, session, index, buf.getvalue()))
        out[f"round{index + 1}_s"] = round(time.perf_counter() - t, 3)
    state["rounds"][0]["candidates"][1]["picked"] = True  # for the screenshot
    state["rounds"][1]["candidates"][2]["starred"] = True
    ctx.tables.save_session(state, session)
    out["pipeline_loads"] = engine.loads
    return out


def screenshots(url: str, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    with _review_page(url, "ann") as page:
        page.wait_for_selector("#rv-image")
        page.screenshot(path=folder / "studio-review.png")
        page.get_by_role("tab", name="Design").click()
        box = page.locator("#ds-sessions input")
        box.click()
        box.fill("bench")
        page.locator("#ds-sessions ul li").filter(has_text="bench").first.click()
        page.click("#ds-load")
        page.wait_for_selector("#ds-table tr[data-round='1']")
        page.screenshot(path=folder / "studio-design.png", full_page=True)
        page.get_by_role("tab", name="Usability (SUS)").click()
        page.wait_for_selector("#sus-submit")
        page.screenshot(path=folder / "studio-sus.png", full_page=True)
    return [str(folder / f"studio-{n}.png") for n in ("review", "design", "sus")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--presses", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--screenshots", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        ws = _setup(Path(tmp), args.n)
        setup_s = time.perf_counter() - t
        ctx = StudioContext(ws.root)
        server, url = _serve(ctx)
        times = review_latency(url, args.presses)
        rounds = design_rounds(ctx)
        shots = screenshots(url, args.screenshots) if args.screenshots else []
        server.should_exit = True
        ctx.close()
        ws.close()
    median = statistics.median(times)
    result = {
        "queue": args.n, "presses": args.presses, "setup_s": round(setup_s, 2),
        "keypress_to_next_image_ms": {"median": round(median, 1),
                                      "p90": round(sorted(times)[int(0.9 * len(times))], 1),
                                      "max": round(max(times), 1)},
        "target_ms": TARGET_MS, "meets_target": median < TARGET_MS,
        "design_round_4_candidates": rounds, "screenshots": shots,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "studio.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
