"""Studio fixtures: a workspace with a synthetic set, a live server in a thread, and headless
Debian Chromium driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from studio_live import CHROMIUM, LiveStudio, add_synthetic

from craftlora.catalog.workspace import Workspace


@pytest.fixture
def review_ws(glaze_type_ws: Workspace) -> Workspace:
    """The glaze/type world plus a synthetic set of 12 images."""
    add_synthetic(glaze_type_ws, 12)
    return glaze_type_ws


@pytest.fixture
def live_studio(review_ws: Workspace) -> Iterator[LiveStudio]:
    studio = LiveStudio(review_ws.root)
    yield studio
    studio.stop()


@pytest.fixture(scope="session")
def browser():
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if exe is None:
        pytest.skip("Debian chromium is not installed (`make test` installs it with apt-get)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True,
                              args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()
