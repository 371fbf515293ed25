"""`craftlora demo lacquer` end to end on a tiny model (slow: a judge, 8 LoRA runs, 2 compares)."""

from __future__ import annotations

import json

import pytest

from craftlora.demo.lacquer import preset, read_claims, run_lacquer
from craftlora.models.tiny import TinySpec, save_tiny_pipeline


def test_claims_are_read_against_the_interval():
    def v(mean, delta, lo, hi):
        return {"metrics": {"fd": {"mean": mean, "vs_first": {"delta": delta, "ci_low": lo,
                                                              "ci_high": hi, "n_seeds": 3}},
                            "lpips_diversity": None}}
    base = {"metrics": {"fd": {"mean": 10.0}, "lpips_diversity": None}}
    got = read_claims({"base": base, "perc+spec": v(6.0, -4.0, -5.0, -3.0)})
    fd_claim, div_claim = got.values()
    assert fd_claim.startswith("reproduced: -40.0%") and div_claim == "not measured"
    assert next(iter(read_claims({"base": base, "perc+spec": v(9.0, -1.0, -3.0, 1.0)})
                     .values())).startswith("inside the noise")
    assert next(iter(read_claims({"base": base, "perc+spec": v(9.0, -1.0, -1.5, -0.5)})
                     .values())).startswith("not reproduced: -10.0%")


@pytest.mark.slow
def test_tiny_lacquer_writes_its_table(tmp_path):
    model = save_tiny_pipeline(TinySpec(), tmp_path / "model", seed=0,
                               corpus=["red lacquer box", "black lacquer tray"])
    s = preset("tiny").model_copy(update={"model": str(model)})
    res = run_lacquer(tmp_path / "out", s)
    assert set(res["variants"]) == {"base", "perc", "spec", "perc+spec"}
    row = res["variants"]["perc+spec"]
    assert set(row) == {"fd_domain", "lpips_diversity", "agreement", "highlight_area"}
    assert len(row["fd_domain"]["seeds"]) == 2 and "vs_base" in row["fd_domain"]
    assert res["perceptual_network"][0].startswith(("classifier:", "vgg19"))
    assert 0.0 <= res["specular"]["mask_soft_iou"] <= 1.0
    assert "mini base" in res["contour_f1"]["skipped"]  # the shipped ControlNet needs it
    assert json.loads((tmp_path / "out" / "lacquer.json").read_text())["wall_s"] > 0
