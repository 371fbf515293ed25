"""Decoder-matched sharpness: the mini VAE's round trip keeps a measured fraction of the detail."""

from __future__ import annotations

import numpy as np
import pytest

from craftlora.data.imageio import load_rgb
from craftlora.mini.render import render_kiln
from craftlora.models.loader import MINI_BASE, load_components
from craftlora.qc.decoder import decoder_matched_factor, roundtrip_sharpness


def test_factor_scales_by_the_ratio_and_never_loosens_past_one():
    assert decoder_matched_factor(0.5, 0.1) == pytest.approx(0.05)
    assert decoder_matched_factor(0.5, 1.7) == 0.5
    assert decoder_matched_factor(0.5, -0.2) == 0.0


@pytest.mark.skipif(not (MINI_BASE / "model_index.json").is_file(), reason="no mini base")
def test_mini_vae_round_trip_is_much_softer_than_the_renders(tmp_path):
    render_kiln(tmp_path / "r", n=12, seed=3, size=64, workers=1)
    images = [np.asarray(load_rgb(p)) for p in sorted((tmp_path / "r").rglob("*.png"))]
    res = roundtrip_sharpness(load_components("mini").vae, images, batch=5)
    assert res["n"] == len(images) == 12
    # renders are crisp (hundreds); the 16×16-latent VAE keeps well under half of that
    assert res["real_median"] > 100
    assert 0 < res["ratio"] < 0.5
    assert res["roundtrip_median"] == pytest.approx(res["ratio"] * res["real_median"])
    with pytest.raises(ValueError, match="at least one image"):
        roundtrip_sharpness(load_components("mini").vae, [])
