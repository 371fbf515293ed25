"""In headless Chromium: review 10 images by keyboard with one undo; submit a SUS form."""

from __future__ import annotations

import pytest

from craftlora.qc.review import note_of

REASONS = ["wrong attribute", "artefact", "modern element", "copies a real image", "other"]


def _shown(page, pos: int) -> int:
    page.wait_for_selector(f"#rv-image[data-pos='{pos}']", timeout=15_000)
    return int(page.get_attribute("#rv-image", "data-id"))


def test_review_ten_images_by_keyboard_with_one_undo(live_studio, review_ws, page):
    queue = [r.id for r in review_ws.catalog.images(set_name="syn")]
    page.goto(live_studio.url)
    page.fill("#rv-reviewer input, #rv-reviewer textarea", "ann")  # 'a' typed here is text
    page.click("#rv-start")
    assert _shown(page, 0) == queue[0]
    expected: list[tuple[int, str, str]] = []
    pos = 0
    keys = ["a", "2", "a", "1", "u", "3", "a", "a", "4", "a", "text", "5", "a"]
    for key in keys:
        if key == "text":  # free text for 'other', then leave the field so keys act again
            page.fill("#rv-text input, #rv-text textarea", "plastic lid")
            page.evaluate("document.activeElement.blur()")
            continue
        page.keyboard.press(key)
        if key == "u":
            expected.pop()
            pos -= 1
        else:
            reason = "" if key == "a" else REASONS[int(key) - 1]
            text = "plastic lid" if reason == "other" else ""
            expected.append((queue[pos], "accept" if key == "a" else "reject",
                             note_of(reason, text)))
            pos += 1
        assert _shown(page, pos) == queue[pos]
    assert len(expected) == 10
    rows = review_ws.catalog.execute(
        "SELECT image_id, decision, note, reviewer FROM reviews ORDER BY id")
    assert [tuple(r)[:3] for r in rows] == expected
    assert {r[3] for r in rows} == {"ann"}
    page.keyboard.press("b")  # back shows the previous image and writes nothing
    assert _shown(page, pos - 1) == queue[pos - 1]
    assert len(review_ws.catalog.execute("SELECT id FROM reviews")) == 10
    page.click("#rv-summary-open, .label-wrap:has-text('Summary')")
    page.click("#rv-refresh")
    page.wait_for_selector("#rv-summary:has-text('10 reviewed')")
    assert "syn: glaze=white, type=bowl" in page.inner_text("#rv-summary")


def test_sus_known_answers_give_the_known_score(live_studio, page):
    page.goto(live_studio.url)
    page.get_by_role("tab", name="Usability (SUS)").click()
    page.fill("#sus-participant input, #sus-participant textarea", "p1")
    for k in range(1, 11):
        page.click(f"#sus-item-{k} label:has-text('{5 if k % 2 else 1}')")
    page.click("#sus-submit")
    page.wait_for_selector("#sus-result:has-text('100')", timeout=15_000)
    assert "SUS score of p1: 100" in page.inner_text("#sus-result")
    assert "n = 1 · mean 100.0" in page.inner_text("#sus-summary")
    assert live_studio.ctx.tables.sus_scores() == [("p1", 100.0)]
    # a second participant, all 3s → 50: the team summary updates
    page.fill("#sus-participant input, #sus-participant textarea", "p2")
    for k in range(1, 11):
        page.click(f"#sus-item-{k} label:has-text('3')")
    page.click("#sus-submit")
    page.wait_for_selector("#sus-result:has-text('50')")
    assert "n = 2 · mean 75.0 · SD 35.4" in page.inner_text("#sus-summary")


@pytest.mark.parametrize("answers, score", [([5, 1] * 5, 100.0), ([1, 5] * 5, 0.0),
                                            ([3] * 10, 50.0), ([4, 2, 4, 2, 4, 2, 4, 2, 4, 2],
                                                               75.0)])
def test_sus_scoring(answers, score):
    from craftlora.studio.sus import SUSError, sus_score

    assert sus_score(answers) == score
    with pytest.raises(SUSError, match="items"):
        sus_score([3] * 9)
    with pytest.raises(SUSError, match=r"items \[2\]"):
        sus_score([3, 0] + [3] * 8)
