"""The consistency report on known sets: true renders score 1, distractors less; HTML grid."""

from __future__ import annotations

from craftlora.character.evaluate import Shot, evaluate, report_html
from craftlora.metrics.features import LpipsExtractor
from craftlora.mini.character import world
from craftlora.mini.character.mascot import DISTRACTORS, render

PROMPTS = {"e000": {"pose": "standing", "view": "front view", "framing": "full body",
                    "expression": "smile", "background": "green background"},
           "e001": {"pose": "waving", "view": "from left", "framing": "upper body",
                    "expression": "open mouth", "background": "dotted teal background"}}


def test_true_renders_reach_the_ceiling_and_distractors_do_not(tmp_path):
    true = [Shot(pid, list(a.values()), im) for pid, a in PROMPTS.items()
            for im in world.true_renders(a, 3, 0)]
    other = [Shot(pid, list(a.values()), render(world.scene_of(a), DISTRACTORS[k], seed=k))
             for pid, a in PROMPTS.items() for k in range(3)]
    net = LpipsExtractor("alex", weights="random")
    figs = evaluate({"true": true, "other": other}, world.identity_features,
                    world.tag_matches, net)
    t, o = figs["true"], figs["other"]
    assert t["identity"]["share"] == 1.0 and t["identity"]["all_features"] == 1.0
    assert t["identity"]["cross_prompt_agreement"] == 1.0
    assert o["identity"]["share"] < 0.6 and o["identity"]["all_features"] == 0.0
    assert t["tag_adherence"] == 1.0
    assert t["diversity"] > 0 and figs["lpips"]["extractor"] == "lpips-alex-random"
    page = report_html({"true": true, "other": other}, figs, tmp_path / "r.html", "t").read_text()
    assert page.count("<tr>") == 3 and page.count("<img") == 12 and "e001" in page
