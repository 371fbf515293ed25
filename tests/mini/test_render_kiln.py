"""Rendering the mini-kiln world: files, determinism, constraints, combos, annotations, masks."""

from __future__ import annotations

import csv
import json
from collections import Counter
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.mini.kiln import ATTRIBUTES, ComboError, is_valid, valid_combinations
from craftlora.mini.render import read_combos, render_kiln
from craftlora.mini.vessel import render_vessel

runner = CliRunner()


def _labels(folder: Path) -> list[dict[str, str]]:
    with (folder / "labels.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_files_labels_and_annotations(mini_kiln_small):
    rows = _labels(mini_kiln_small)
    assert len(rows) == 48
    assert list(rows[0]) == ["file", *ATTRIBUTES]
    schema = json.loads(
        resources.files("craftlora.data").joinpath("annotation.schema.json").read_text()
    )
    for r in rows:
        combo = {a: r[a] for a in ATTRIBUTES}
        assert is_valid(combo), combo  # constraints respected
        with Image.open(mini_kiln_small / r["file"]) as im:
            assert im.size == (64, 64) and im.mode == "RGB"
        ann = json.loads((mini_kiln_small / (Path(r["file"]).stem + ".json")).read_text())
        jsonschema.validate(ann, schema)
        assert ann["objects"][0]["name"] == r["type"]
        assert r["glaze"] in ann["description"] and r["kiln"] in ann["description"]


def test_same_seed_byte_identical_any_worker_count(mini_kiln_small, tmp_path):
    render_kiln(tmp_path / "again", n=48, seed=3, workers=2)
    assert _tree(tmp_path / "again") == _tree(mini_kiln_small)
    render_kiln(tmp_path / "other", n=48, seed=4, workers=1)
    other = _tree(tmp_path / "other")
    assert other["mk00000.png"] != _tree(mini_kiln_small)["mk00000.png"]


def test_render_vessel_is_deterministic_and_mask_is_sane():
    combo = {"dynasty": "Song", "kiln": "Longquan", "glaze": "celadon", "type": "vase"}
    a, ma = render_vessel(combo, np.random.default_rng(5))
    b, mb = render_vessel(combo, np.random.default_rng(5))
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3)
    assert ma.dtype == bool and ma.shape == (64, 64)
    assert np.array_equal(a, b) and np.array_equal(ma, mb)
    assert 0.05 < ma.mean() < 0.8
    big, mbig = render_vessel(combo, np.random.default_rng(5), size=96)
    assert big.shape == (96, 96, 3) and mbig.shape == (96, 96)


def test_mask_follows_the_drawn_outline():
    """Image gradients are strong on the mask boundary: a shifted mask loses that."""
    rng = np.random.default_rng(0)
    combos = valid_combinations()
    on, shifted = [], []
    for i in range(24):
        img, mask = render_vessel(combos[(i * 37) % len(combos)], rng)
        f = img.astype(np.float32)
        grad = np.zeros(mask.shape, np.float32)
        grad[:, 1:] += np.abs(np.diff(f, axis=1)).sum(-1)
        grad[1:, :] += np.abs(np.diff(f, axis=0)).sum(-1)
        edge = mask & ~(np.roll(mask, 1, 0) & np.roll(mask, -1, 0)
                        & np.roll(mask, 1, 1) & np.roll(mask, -1, 1))
        on.append(grad[edge | np.roll(edge, 1, 1) | np.roll(edge, 1, 0)].mean())
        moved = np.roll(edge, 4, 1)
        shifted.append(grad[moved | np.roll(moved, 1, 1) | np.roll(moved, 1, 0)].mean())
    assert np.mean(on) > 1.5 * np.mean(shifted)


def test_every_attribute_value_rendered_and_visible(tmp_path):
    """Each value is rendered; glaze colour and type shape show in the pixels as intended."""
    picks = []
    for attr, values in ATTRIBUTES.items():
        for v in values:
            picks.append(next(c for c in valid_combinations() if c[attr] == v))
    labels = render_kiln(tmp_path / "all", combos=[(c, 1) for c in picks], seed=1, workers=1)
    rows = _labels(labels.parent)
    for attr, values in ATTRIBUTES.items():
        assert {r[attr] for r in rows} == set(values)

    def vessel_rgb(combo, k=10):
        rng = np.random.default_rng(7)
        cols = [img[m].mean(0) for img, m in (render_vessel(combo, rng) for _ in range(k))]
        return np.mean(cols, axis=0)

    def aspect(combo, k=10):
        rng = np.random.default_rng(8)
        out = []
        for _ in range(k):
            _, m = render_vessel(combo, rng)
            ys, xs = np.nonzero(m)
            out.append((np.ptp(ys) + 1) / (np.ptp(xs) + 1))
        return float(np.mean(out))

    base = {"dynasty": "Song", "kiln": "Ding", "type": "dish"}
    white = vessel_rgb(base | {"glaze": "white"})
    ivory = vessel_rgb(base | {"glaze": "ivory white"})
    black = vessel_rgb(base | {"glaze": "black"})
    assert black.mean() < 0.5 * white.mean()
    assert (ivory[0] - ivory[2]) > (white[0] - white[2]) + 10  # warmer, a small hue shift
    song_lq = {"dynasty": "Song", "kiln": "Longquan", "glaze": "celadon"}
    assert aspect(song_lq | {"type": "vase"}) > 1.2 > aspect(song_lq | {"type": "pot"}) > 0.9
    assert aspect(song_lq | {"type": "dish"}) < aspect(song_lq | {"type": "bowl"}) < 0.8
    assert aspect(song_lq | {"type": "plate"}) < 0.5


def test_combos_file_exact_via_cli(tmp_path):
    wanted = [("Song", "Guan", "celadon", "washer", 3), ("Yuan", "Jingdezhen", "white",
                                                          "meiping", 2),
              ("Song", "Jian", "brown", "tea bowl", 0), ("Song", "Ding", "ivory white", "dish", 1)]
    f = tmp_path / "combos.csv"
    f.write_text("dynasty,kiln,glaze,type,count\n"
                 + "".join(",".join(map(str, w)) + "\n" for w in wanted))
    res = runner.invoke(app, ["mini", "kiln", str(tmp_path / "out"), "--combos", str(f),
                              "--json", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["images"] == 6
    rows = _labels(tmp_path / "out")
    got = [tuple(r[a] for a in ATTRIBUTES) for r in rows]
    expect = [w[:4] for w in wanted for _ in range(w[4])]
    assert got == expect
    assert Counter(got) == Counter(expect)
    assert len(list((tmp_path / "out").glob("*.png"))) == 6


def test_combos_file_errors_name_file_and_line(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("dynasty,kiln,glaze,type,count\n"
                 "Song,Guan,celadon,washer,2\n"
                 "Song,Atlantis,celadon,washer,1\n"
                 "Yuan,Guan,celadon,washer,1\n"
                 "Song,Jun,sky blue,bowl,many\n")
    with pytest.raises(ComboError) as e:
        read_combos(f)
    msg = str(e.value)
    assert f"{f}:3" in msg and "Atlantis" in msg
    assert f"{f}:4" in msg and "historical constraints" in msg
    assert f"{f}:5" in msg and "many" in msg
    assert f"{f}:2" not in msg
    res = runner.invoke(app, ["mini", "kiln", str(tmp_path / "o"), "--combos", str(f)])
    assert res.exit_code != 0 and "Atlantis" in res.output
    assert not (tmp_path / "o" / "labels.csv").exists()
    # an impossible-but-known combination renders when asked explicitly
    f.write_text("dynasty,kiln,glaze,type,count\nYuan,Guan,celadon,washer,1\n")
    assert read_combos(f, allow_invalid=True)[0][1] == 1
    (tmp_path / "h.csv").write_text("kiln,count\nGuan,1\n")
    with pytest.raises(ComboError, match="missing dynasty"):
        read_combos(tmp_path / "h.csv")
