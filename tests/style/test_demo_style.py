"""`craftlora demo style --preset tiny` end to end on a tiny model: the style.json contract."""

import json
import math

from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.style.study import METHODS

FIGURES = {"hfrd", "lpips_content", "hist", "style_agreement", "mask_iou"}


def test_demo_style_tiny(tmp_path, tiny_model):
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "style", "--out", str(out), "--preset", "tiny",
                                   "--model", str(tiny_model)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "style.json").read_text())
    assert set(doc["methods"]) == set(METHODS)
    for figs in doc["methods"].values():
        assert set(figs) == FIGURES and all(math.isfinite(v) for v in figs.values())
        assert 0 <= figs["style_agreement"] <= 1 and 0 <= figs["mask_iou"] <= 1
    assert len(doc["blocks"]) == 3 and set(doc["blocks"]) <= set(doc["all_blocks"])
    assert doc["ground_truth_embroidery"]["style_agreement"] == 1.0
    assert doc["content_network"] and doc["wall_s"] > 0
    html = (out / "style.html").read_text()
    assert all(m in html for m in METHODS) and html.count("<img") == 1 + 9 * 2  # chart, 2 x 9
    assert (out / "runs" / "satin" / "contrastive" / "out-moon-000.png").exists()
