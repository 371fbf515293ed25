"""The generic world (no domain vocabulary) and contact sheets."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.mini import generic
from craftlora.mini.kiln import ATTRIBUTES, PHRASES
from craftlora.mini.render import render_kiln
from craftlora.mini.sheet import make_sheet

runner = CliRunner()
DOMAIN_WORDS = {v.lower() for vs in ATTRIBUTES.values() for v in vs} | {
    "kiln", "glaze", "glazed", "porcelain", "dynasty", "vessel", "celadon", "ceramic",
}


def test_generic_files_captions_and_determinism(tmp_path):
    cap = generic.render_generic(tmp_path / "a", n=30, seed=2, workers=1)
    generic.render_generic(tmp_path / "b", n=30, seed=2, workers=2)
    tree = lambda d: {p.name: p.read_bytes() for p in sorted(d.iterdir())}  # noqa: E731
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    with cap.open(newline="") as f:
        rows = list(csv.DictReader(f))
    with (tmp_path / "a" / "labels.csv").open(newline="") as f:
        labels = list(csv.DictReader(f))
    assert len(rows) == len(labels) == 30
    for r, lab in zip(rows, labels, strict=True):
        txt = (tmp_path / "a" / r["file"]).with_suffix(".txt").read_text().strip()
        assert txt == r["caption"]
        # the caption names what the labels say was drawn
        for key in ("object", "colour", "floor", "light"):
            assert lab[key] in r["caption"], (key, r["caption"])
        with Image.open(tmp_path / "a" / r["file"]) as im:
            assert im.size == (64, 64)


def test_generic_vocabulary_is_disjoint_from_the_domain():
    words = set(generic.OBJECTS) | set(generic.COLOURS) | set(generic.FLOORS) | set(generic.LIGHTS)
    for w in words:
        assert w.lower() not in DOMAIN_WORDS, w
    rng = np.random.default_rng(0)
    for _ in range(200):
        _, meta = generic.render_generic_scene(rng, 32)
        cap = meta["caption"].lower()
        for w in DOMAIN_WORDS:
            assert not re.search(rf"\b{re.escape(w)}\b", cap), (w, cap)
        for phrases in PHRASES.values():
            for p in phrases.values():
                assert p.lower() not in cap


def test_generic_objects_differ_in_shape():
    """Objects are told apart by shape: their mean image differs beyond the noise."""
    sums = {}
    for kind in ("ball", "star"):
        acc = np.zeros((64, 64))
        for i in range(6):
            n = 128
            y, x = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5
            mask, _ = generic._shape(kind, x, y, 64.0, 64.0, 40.0, 0.1 * i,
                                     np.array([0.0, -0.6, 0.8]))
            acc += mask[::2, ::2]
        sums[kind] = acc / 6
    assert np.abs(sums["ball"] - sums["star"]).mean() > 0.1


def test_sheet_one_row_per_value_and_skips_bad_images(tmp_path, mini_kiln_small):
    res = make_sheet(mini_kiln_small, tmp_path / "sheet.png", per_row=4, cell=32)
    n_rows = sum(len(v) for v in ATTRIBUTES.values())
    assert res["rows"] == n_rows and res["skipped"] == []
    with Image.open(tmp_path / "sheet.png") as im:
        assert im.size[1] == n_rows * 34
    # a broken image is skipped and named; the sheet is still written
    broken = tmp_path / "copy"
    render_kiln(broken, n=12, seed=0, workers=1)
    first = next(iter(sorted(broken.glob("*.png"))))
    first.write_bytes(b"not a png")
    out = runner.invoke(app, ["mini", "sheet", str(broken), str(tmp_path / "s2.png"), "--json"])
    assert out.exit_code == 0, out.output
    skipped = json.loads(out.stdout)["skipped"]
    assert [Path(s["file"]).name for s in skipped] == [first.name]
    assert (tmp_path / "s2.png").stat().st_size > 0
    missing = runner.invoke(app, ["mini", "sheet", str(tmp_path / "nothing"), "x.png"])
    assert missing.exit_code != 0 and "labels.csv" in missing.output


def test_generic_cli_json(tmp_path):
    out = runner.invoke(app, ["mini", "generic", str(tmp_path / "g"), "--n", "5", "--json",
                              "--workers", "1"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["images"] == 5
    assert len(list((tmp_path / "g").glob("*.txt"))) == 5
