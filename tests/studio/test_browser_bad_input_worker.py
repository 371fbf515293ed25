"""Bad sketch uploads are refused with one clear line and nothing written; a generation runs
in the background (the page keeps answering), shows progress and can be cancelled."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def _design_files(root: Path) -> list[str]:
    folder = root / "design"
    return sorted(str(p) for p in folder.rglob("*.png")) if folder.exists() else []


def test_non_image_and_100_megapixel_uploads_are_refused(live_studio, review_ws, page, tmp_path):
    fake = tmp_path / "sketch.png"
    fake.write_bytes(b"#!/bin/sh\necho this is not an image\n")
    huge = tmp_path / "huge.png"
    Image.new("1", (10_000, 10_000), 1).save(huge)  # 100 megapixels, 32 kB on disk
    n_images = review_ws.catalog.count()
    for path, reason in ((fake, "not an image in an allowed format"),
                         (huge, "decompression bomb")):
        page.goto(live_studio.url)
        page.get_by_role("tab", name="Design").click()
        page.wait_for_selector("#ds-upload button.upload-container")
        with page.expect_file_chooser() as chooser:
            page.click("#ds-upload button.upload-container")
        chooser.value.set_files(str(path))
        page.wait_for_selector(f"#ds-upload :text('{path.name}')", timeout=90_000)
        page.click("#ds-generate")
        page.wait_for_selector(f"#ds-status:has-text('{reason}')", timeout=30_000)
        status = page.inner_text("#ds-status").strip()
        assert path.name in status and len(status.splitlines()) == 1
    assert _design_files(review_ws.root) == []
    assert review_ws.catalog.count() == n_images
    assert live_studio.ctx.tables.session(1) == {
        "name": "design", "designer": "", "sketch": None, "rounds": [], "fed_back": None,
        "train_config": None, "export": None}


def test_generation_in_background_review_meanwhile_then_cancel(live_studio, review_ws, page):
    page.goto(live_studio.url)
    page.get_by_role("tab", name="Design").click()
    page.fill("#ds-steps input[type=number]", "60")
    page.locator("#ds-steps input[type=number]").press("Enter")
    page.fill("#ds-n input[type=number]", "8")
    page.locator("#ds-n input[type=number]").press("Enter")
    page.click("#ds-generate")
    page.wait_for_selector("#ds-bar[data-progress]:not([data-progress='0'])", timeout=60_000)
    # the page answers while the model works: review one image in another tab of the app
    page.get_by_role("tab", name="Review").click()
    page.fill("#rv-reviewer input, #rv-reviewer textarea", "ann")
    page.click("#rv-start")
    page.wait_for_selector("#rv-image[data-pos='0']")
    page.keyboard.press("a")
    page.wait_for_selector("#rv-image[data-pos='1']", timeout=10_000)
    page.get_by_role("tab", name="Design").click()
    assert "step" in page.inner_text("#ds-progress")
    page.click("#ds-cancel")
    page.wait_for_selector("#ds-status:has-text('cancelled')", timeout=60_000)
    assert len(review_ws.catalog.execute("SELECT id FROM reviews")) == 1
    state = live_studio.ctx.tables.session(1)
    assert state is not None and state["rounds"] == []
