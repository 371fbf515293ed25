"""In headless Chromium: draw a sketch, generate 4 candidates on the mini base through the
shipped ControlNet with contour F1 each, pick 2, vary one, feed back, find the set in the
catalog with provenance, and reload the session."""

from __future__ import annotations

import tomllib

from craftlora.train.config import load_train_config

TIMEOUT = 120_000


def _draw_square(page) -> None:
    page.click("#ds-sketch button[aria-label='Brush']")
    box = page.locator("#ds-sketch canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 70, cy - 70)
    page.mouse.down()
    for dx, dy in ((70, -70), (70, 70), (-70, 70), (-70, -70)):
        page.mouse.move(cx + dx, cy + dy, steps=10)
    page.mouse.up()


def _choose(page, dropdown: str, text: str) -> None:
    box = page.locator(f"{dropdown} input")
    box.click()
    box.fill(text)
    page.locator(f"{dropdown} ul li").filter(has_text=text).first.click()


def _rows(page) -> list[list[str]]:
    return [r.split("\t") for r in page.inner_text("#ds-f1").strip().splitlines()[1:]]


def _select(page, n: int) -> None:
    page.locator("#ds-gallery button.thumbnail-item, #ds-gallery .thumbnail-item").nth(n).click()
    page.wait_for_selector("#ds-status:has-text('candidate')")


def test_sketch_generate_pick_vary_feed_back_reload(live_studio, review_ws, page):
    page.goto(live_studio.url)
    page.get_by_role("tab", name="Design").click()
    page.fill("#ds-designer input, #ds-designer textarea", "dee")
    page.click("#ds-new")
    page.wait_for_selector("#ds-status:has-text('new session #1')")
    _choose(page, "#ds-a-glaze", "celadon")
    page.fill("#ds-steps input[type=number]", "4")  # few steps: a fast test
    page.locator("#ds-steps input[type=number]").press("Enter")
    _draw_square(page)
    page.click("#ds-generate")
    page.wait_for_selector("#ds-table tr[data-k='3']", timeout=TIMEOUT)
    rows = _rows(page)
    assert len(rows) == 4 and all(r[2] == "txt2img" for r in rows)
    f1 = [float(r[4]) for r in rows]
    assert all(0.0 <= x <= 1.0 for x in f1) and max(f1) > 0.2  # the ControlNet follows
    assert "4 candidates" in page.inner_text("#ds-status")

    for n in (1, 2):  # pick two
        _select(page, n)
        page.click("#ds-pick")
        page.wait_for_selector(f"#ds-table tr[data-k='{n}'] td.picked:has-text('yes')")
    page.fill("#ds-note input, #ds-note textarea", "lid  too   tall")  # on candidate 2
    page.click("#ds-save-note")
    page.wait_for_selector("#ds-table tr[data-k='2'] td:has-text('lid too tall')")
    page.click("#ds-star")
    page.wait_for_selector("#ds-table tr[data-round='0'][data-k='2'] td:has-text('★')")
    _select(page, 2)
    page.click("#ds-vary")
    page.wait_for_selector("#ds-table tr[data-round='1'][data-k='3']", timeout=TIMEOUT)
    assert [r[2] for r in _rows(page)[4:]] == ["img2img"] * 4
    page.click("#ds-feed")
    page.wait_for_selector("#ds-status:has-text('fed back')")
    assert "set design-s1 (+2, 0 already there)" in page.inner_text("#ds-status")

    cat = review_ws.catalog
    fed = cat.images(set_name="design-s1")
    assert len(fed) == 2 and {r.origin for r in fed} == {"synthetic"}
    for rec, k in zip(fed, (1, 2), strict=True):
        p = rec.provenance
        assert (p["design_session"], p["round"], p["candidate"], p["seed"]) == (1, 0, k, k)
        assert p["model"] == "mini" and p["controlnet"]["source"] == "mini"
        assert p["contour"]["tolerant_f1"] == f1[k] or abs(p["contour"]["tolerant_f1"]
                                                           - f1[k]) < 1e-3
        assert rec.attributes == {"glaze": "celadon"} and "celadon" in rec.caption
        assert (p["note"], p["starred"]) == (("lid too tall", True) if k == 2 else ("", False))
        assert (review_ws.root / rec.path).is_file()
    page.click("#ds-next")
    page.wait_for_selector("#ds-status:has-text('next-round.toml')")
    cfg = load_train_config(review_ws.root / "design/s1/next-round.toml")
    assert cfg.data.set_name == "design-s1" and cfg.data.origin == "synthetic"
    assert tomllib.loads((review_ws.root / "design/s1/next-round.toml").read_text())["mode"] \
        == "lora"

    page.reload()  # the session comes back from the catalog
    page.get_by_role("tab", name="Design").click()
    _choose(page, "#ds-sessions", "#1 · design")
    page.click("#ds-load")
    page.wait_for_selector("#ds-table tr[data-round='1'][data-k='3']", timeout=TIMEOUT)
    rows = _rows(page)
    assert len(rows) == 8 and [float(r[4]) for r in rows[:4]] == f1
    assert [r[5] for r in rows[:4]] == ["", "yes", "yes", ""]
    assert page.input_value("#ds-a-glaze input") == "celadon"  # the form comes back too
    assert page.input_value("#ds-seed input") == "3"  # the variation's seed: pick 2 + 1
    page.fill("#ds-n input[type=number]", "1")  # the restored sketch guides a new round
    page.locator("#ds-n input[type=number]").press("Enter")
    page.click("#ds-generate")
    page.wait_for_selector("#ds-table tr[data-round='2'][data-k='0']", timeout=TIMEOUT)
    rnd = live_studio.ctx.tables.session(1)["rounds"][2]
    assert rnd["kind"] == "txt2img" and rnd["controlnet"] is not None
    assert rnd["candidates"][0]["contour"]["tolerant_f1"] > 0
