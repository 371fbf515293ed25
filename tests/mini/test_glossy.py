"""The glossy world: same seed same bytes, and truth that is exact by construction."""

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.mini.glossy.render import render_glossy, render_scene
from craftlora.mini.glossy.truth import score_world
from craftlora.mini.glossy.world import combinations


def test_clean_and_glossy_differ_only_under_the_highlight():
    for k, combo in enumerate(combinations()):
        glossy, clean, h = render_scene(combo, np.random.default_rng([3, k]), 32)
        assert glossy.shape == clean.shape == (32, 32, 3) and h.shape == (32, 32)
        assert h.min() >= 0.0 and h.max() <= 1.0 and (h >= 0.5).any()
        assert np.array_equal(glossy[h == 0], clean[h == 0])  # same scene, same noise
        lit = h >= 0.7  # mostly the light's (near-white) colour there
        assert glossy[lit].mean() > clean[lit].mean() + 40


def test_render_is_deterministic_and_balanced(tmp_path):
    a = render_glossy(tmp_path / "a", n=24, seed=5, size=32, workers=1)
    b = render_glossy(tmp_path / "b", n=24, seed=5, size=32, workers=1)
    assert a.read_bytes() == b.read_bytes()
    for sub in ("images", "truth/clean", "truth/mask"):
        assert (tmp_path / "a" / sub / "gl00007.png").read_bytes() == \
            (tmp_path / "b" / sub / "gl00007.png").read_bytes()
    rows = a.read_text().splitlines()[1:]
    assert len(rows) == 24 and len({r.split(",", 1)[1] for r in rows}) == 12  # 2 each


def test_score_world_and_cli(tmp_path):
    render_glossy(tmp_path, n=6, seed=0, size=32, workers=1)
    (tmp_path / "truth" / "mask" / "gl00002.png").write_bytes(b"not a png")
    s = score_world(tmp_path)
    assert s["images"] == 5 and s["skipped"][0].startswith("gl00002.png")
    assert s["restore_error_highlights"] < s["glossy_error_highlights"]  # reduction helps
    assert 0.0 <= s["mask_soft_iou"] <= 1.0
    r = CliRunner().invoke(app, ["specular", str(tmp_path), "--out", str(tmp_path / "r"),
                                 "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["written"] == 6 and out["score"]["images"] == 5
    assert Image.open(tmp_path / "r" / "gl00000.png").size == (32, 32)
