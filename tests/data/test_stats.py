"""Imbalance figures against hand-computed values, and the workspace view of them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from craftlora.catalog.stats import combination_stats, lorenz_curve, workspace_stats, write_charts


def test_hand_computed_one_to_four():
    s = combination_stats({("a",): 1, ("b",): 2, ("c",): 3, ("d",): 4})
    assert s["imbalance_ratio"] == 4.0
    # population σ = sqrt(((1.5² + 0.5²) · 2) / 4) = sqrt(1.25); μ = 2.5
    assert s["cv"] == pytest.approx(math.sqrt(1.25) / 2.5)
    # Σ_i Σ_j |n_i − n_j| = 2 · (1+2+3+1+2+1) = 20; 2 K² μ = 2 · 16 · 2.5 = 80
    assert s["gini"] == pytest.approx(0.25)
    h = -sum(p * math.log(p) for p in (0.1, 0.2, 0.3, 0.4))
    assert s["normalized_entropy"] == pytest.approx(h / math.log(4))
    assert s["normalized_entropy"] == pytest.approx(0.92321, abs=1e-5)


def test_uniform_and_extreme():
    u = combination_stats({(str(i),): 5 for i in range(6)})
    assert (u["imbalance_ratio"], u["cv"], u["gini"]) == (1.0, 0.0, 0.0)
    assert u["normalized_entropy"] == pytest.approx(1.0)
    # one combination holds everything among four: G = (K−1)/K with this definition
    e = combination_stats({("a",): 12, ("b",): 0, ("c",): 0, ("d",): 0})
    assert e["gini"] == pytest.approx(0.75)
    assert e["imbalance_ratio"] == math.inf
    assert e["normalized_entropy"] == pytest.approx(0.0)
    assert e["cv"] == pytest.approx(math.sqrt(3))  # σ = sqrt((81 + 3·9)/4) = sqrt(27), μ = 3
    one = combination_stats({("a",): 7})
    assert (one["imbalance_ratio"], one["gini"], one["normalized_entropy"]) == (1.0, 0.0, 1.0)
    assert combination_stats({})["gini"] is None


def test_lorenz_area_gives_the_same_gini():
    counts = [1, 2, 3, 4, 10]
    x, y = lorenz_curve(counts)
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))
    g = combination_stats({(str(i),): c for i, c in enumerate(counts)})["gini"]
    assert 1 - 2 * area == pytest.approx(g)


def test_workspace_stats_counts_and_charts(labelled_ws, tmp_path):
    ws = labelled_ws({("white", "bowl"): 3, ("celadon", "vase"): 1, ("white", "vase"): 2},
                     synthetic=4)
    rec = ws.catalog.images()[0]
    ws.catalog.add_image(sha256="f" * 64, path="images/x.png", width=8, height=8,
                         attributes={"glaze": "black"})  # lacks 'type'
    s = workspace_stats(ws)
    assert s["images"] == 7 and s["unlabelled"] == 1
    assert s["combinations"][0] == {"values": {"glaze": "white", "type": "bowl"}, "count": 3}
    assert [c["count"] for c in s["combinations"]] == [3, 2, 1]
    assert s["attributes"]["glaze"] == {"white": 5, "celadon": 1, "black": 1, "blue": 0}
    assert s["attributes"]["type"]["(missing)"] == 1
    assert s["imbalance_ratio"] == 3.0
    assert s["possible_combinations"] == 20 and s["observed_combinations"] == 3
    by_glaze = workspace_stats(ws, by=["glaze"])
    assert {tuple(c["values"].values()): c["count"] for c in by_glaze["combinations"]} == {
        ("white",): 5, ("celadon",): 1, ("black",): 1}
    assert workspace_stats(ws, origin="synthetic")["images"] == 4
    ws.catalog.set_splits({rec.id: "val"})
    assert workspace_stats(ws, split="val")["images"] == 1
    with pytest.raises(ValueError, match="unknown attribute"):
        workspace_stats(ws, by=["kiln"])
    charts = write_charts(s, tmp_path / "charts")
    for path in charts.values():
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
