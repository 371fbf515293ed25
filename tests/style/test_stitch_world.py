"""The stitch world: exact masks, distinct styles, held-out motifs, same seed same bytes."""

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.mini.stitch.render import read_labels, render_stitch
from craftlora.mini.stitch.styles import STYLES


def _img(p):
    return np.asarray(Image.open(p)).astype(np.float32) / 255


def test_world_layout_masks_and_styles(tmp_path):
    labels = render_stitch(tmp_path / "a", per_motif=1, seed=3, size=32)
    rows = read_labels(tmp_path / "a")
    assert {r["split"] for r in rows} == {"train", "test"}
    assert {r["motif"] for r in rows if r["split"] == "test"} == {"moon", "leaf"}
    for r in rows:
        design = _img(tmp_path / "a" / "design" / f"{r['id']}.png")
        mask = _img(tmp_path / "a" / "mask" / f"{r['id']}.png") > 0.5
        assert 0.1 < mask.mean() < 0.7
        # the flat design is uniform colour blocks: the ground is one colour outside the mask
        ground = design[~mask]
        assert np.abs(ground - np.median(ground, 0)).max(1).mean() < 0.05
        # every style changes the pixels and differs from every other style
        embs = [_img(tmp_path / "a" / s / f"{r['id']}.png") for s in STYLES]
        for i, e in enumerate(embs):
            assert np.abs(e - design).mean() > 0.01
            for f in embs[i + 1:]:
                assert np.abs(e - f).mean() > 0.01
    again = render_stitch(tmp_path / "b", per_motif=1, seed=3, size=32)
    assert labels.read_bytes() == again.read_bytes()
    assert (tmp_path / "a/satin/star-000.png").read_bytes() == (
        tmp_path / "b/satin/star-000.png").read_bytes()


def test_cli_mini_stitch(tmp_path):
    res = CliRunner().invoke(app, ["mini", "stitch", str(tmp_path / "w"), "--per-motif", "1",
                                   "--size", "32", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["designs"] == 8 and out["styles"] == list(STYLES)
    bad = CliRunner().invoke(app, ["mini", "stitch", str(tmp_path / "x"), "--size", "33"])
    assert bad.exit_code != 0 and "even" in bad.output
