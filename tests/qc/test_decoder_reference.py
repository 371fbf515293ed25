"""``[qc] sharpness_reference = "decoder"``: the sharpness limit of a generated set scales by
what the model's VAE keeps, measured once per model and cached in the workspace."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from craftlora.data.imageio import load_rgb, sha256_file
from craftlora.models.loader import load_components
from craftlora.models.tiny import TinySpec, save_tiny_pipeline
from craftlora.qc import run_qc
from craftlora.qc.checks import QCError
from craftlora.qc.decoder import roundtrip_sharpness

from .conftest import vessel


def _generated(ws, name: str, model: str, model_hash: str, n: int = 3, first: int = 0) -> None:
    """``n`` images of set ``name`` whose provenance names the model that made them."""
    for i in range(first, first + n):
        rel = f"{name}/{i}.png"
        (ws.root / name).mkdir(exist_ok=True)
        Image.fromarray(vessel(2000 + i)).save(ws.root / rel)
        ws.catalog.add_image(sha256=sha256_file(ws.root / rel), path=rel, width=64, height=64,
                             origin="synthetic", set_name=name,
                             provenance={"model": model, "model_hash": model_hash})


def test_decoder_reference_scales_the_limit_and_is_measured_once(tmp_path, qc_workspace):
    ws = qc_workspace(n_real=12, n_syn=3)
    model = save_tiny_pipeline(TinySpec(image_size=64), tmp_path / "m" / "pipe")
    _generated(ws, "gen", str(model), "f" * 64)

    first = run_qc(ws, "gen", sharpness_reference="decoder")
    lim = first["sharpness_limit"]
    real = [np.asarray(load_rgb(ws.resolve(r.path)))
            for r in ws.catalog.images(origin="real", split="train")]
    ratio = roundtrip_sharpness(load_components(str(model)).vae, real)["ratio"]
    assert lim["decoder_matched"] and not lim["decoder"]["cached"]
    assert lim["decoder"]["ratio"] == pytest.approx(ratio)
    assert lim["factor"] == pytest.approx(0.5 * min(1.0, ratio))
    assert first["config"]["sharpness_factor"] == pytest.approx(lim["factor"])
    assert len(list((ws.root / "cache" / "qc-decoder").glob("*.json"))) == 1

    shutil.rmtree(model)  # a second set of the same model never loads it again
    _generated(ws, "gen2", str(model), "f" * 64, first=10)
    again = run_qc(ws, "gen2", sharpness_reference="decoder")["sharpness_limit"]
    assert again["decoder"]["cached"] and again["factor"] == pytest.approx(lim["factor"])

    plain = run_qc(ws, "syn", sharpness_reference="decoder")["sharpness_limit"]
    assert not plain["decoder_matched"] and plain["factor"] == 0.5  # names no model
    assert run_qc(ws, "gen")["sharpness_limit"]["factor"] == 0.5  # config default: real


def test_decoder_reference_refuses_a_set_of_two_models(tmp_path, qc_workspace):
    ws = qc_workspace(n_real=4, n_syn=0)
    _generated(ws, "a", "m1", "1" * 64, n=1)
    _generated(ws, "a", "m2", "2" * 64, n=1, first=1)
    with pytest.raises(QCError, match="2 models"):
        run_qc(ws, "a", sharpness_reference="decoder")
    with pytest.raises(ValueError, match="sharpness_reference"):
        run_qc(ws, "a", sharpness_reference="sharpest")
