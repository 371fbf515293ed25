"""Automatic QC on a procedural workspace: every reason triggered by a crafted bad image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from craftlora.data.imageio import sha256_file
from craftlora.metrics.judge import Judge
from craftlora.qc import passed_ids, run_qc
from craftlora.qc.checks import QCError, check_blank
from craftlora.qc.measure import measure

from .conftest import add_png, vessel


def _by_check(ws, ids):
    rows = ws.catalog.qc_results(ids)
    return {i: {r.check_name: r for r in rows.get(i, [])} for i in ids}


def test_good_synthetic_images_pass_every_check(qc_workspace):
    ws = qc_workspace(n_real=40, n_syn=8)
    summary = run_qc(ws, "syn")
    syn = {r.id for r in ws.catalog.images(set_name="syn")}
    assert summary["n"] == 8 and summary["passed_all"] == 8, summary["failures_by_reason"]
    assert passed_ids(ws.catalog, "syn") == syn
    assert summary["skipped"] == {"agreement": "no judge given"}
    assert summary["outlier_features"]["space"] == "pixels"
    rows = ws.catalog.qc_results(sorted(syn))
    assert {r.check_name for r in rows[min(syn)]} == {
        "decode", "blank", "exposure", "contrast", "sharpness", "duplicate", "memorisation",
        "outlier"}


def _crafted(ws):
    """One bad image per reason; returns {name: image id}."""
    real3 = np.asarray(Image.open(ws.root / "real/3.png"))
    good = vessel(2000)
    ids = {}
    add = lambda arr, name, **kw: add_png(ws, arr, f"bad/{name}.png", origin="synthetic",  # noqa: E731
                                          set_name="bad", **kw)
    ids["first"] = add(good, "first")
    ids["duplicate"] = add(good, "dup", compress_level=1)  # same pixels, other bytes
    ids["memorised"] = add(real3, "memorised", compress_level=1)
    ids["flat"] = add(np.full((64, 64, 3), 128, np.uint8), "flat")
    ids["black"] = add(np.zeros((64, 64, 3), np.uint8), "black")
    bright = (good.astype(np.float32) * 0.3 + 190).astype(np.uint8)
    ids["overexposed"] = add(bright, "overexposed")
    g = good.astype(np.float32)
    ids["low_contrast"] = add((((g - g.mean()) * 0.12) + g.mean()).astype(np.uint8), "lowcon")
    import cv2
    ids["blurred"] = add(cv2.GaussianBlur(good, (0, 0), 2.5), "blurred")
    odd = np.zeros((64, 64, 3), np.float32)
    odd[:, :, 1] = 230
    odd[::8, :, 0] = 255
    odd[:, ::8, 2] = 255
    odd += np.random.default_rng(0).normal(0, 6, odd.shape)
    ids["outlier"] = add(np.clip(odd, 0, 255).astype(np.uint8), "outlier")
    # a truncated PNG, a file whose size differs from the catalog's, a float TIFF of NaNs
    trunc = ws.root / "bad/trunc.png"
    Image.fromarray(vessel(2001)).save(trunc)
    trunc.write_bytes(trunc.read_bytes()[:300])
    ids["truncated"] = ws.catalog.add_image(sha256=sha256_file(trunc), path="bad/trunc.png",
                                            width=64, height=64, origin="synthetic",
                                            set_name="bad")
    small = ws.root / "bad/small.png"
    Image.fromarray(vessel(2002, size=48)).save(small)
    ids["wrong_size"] = ws.catalog.add_image(sha256=sha256_file(small), path="bad/small.png",
                                             width=64, height=64, origin="synthetic",
                                             set_name="bad")
    nan = ws.root / "bad/nan.tif"
    Image.fromarray(np.full((64, 64), np.nan, np.float32)).save(nan)
    ids["nan"] = ws.catalog.add_image(sha256=sha256_file(nan), path="bad/nan.tif", width=64,
                                      height=64, origin="synthetic", set_name="bad")
    return ids


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_each_reason_is_triggered_by_a_crafted_image(qc_workspace):
    ws = qc_workspace(n_real=40, n_syn=0)
    ids = _crafted(ws)
    summary = run_qc(ws, "bad")
    res = _by_check(ws, list(ids.values()))
    expect = {
        "duplicate": "duplicate", "memorised": "memorisation", "flat": "blank",
        "black": "blank", "overexposed": "exposure", "low_contrast": "contrast",
        "blurred": "sharpness", "outlier": "outlier", "truncated": "decode",
        "wrong_size": "decode", "nan": "blank",
    }
    for name, check in expect.items():
        r = res[ids[name]][check]
        assert not r.passed, f"{name} should fail {check}: {r}"
    assert "truncated" in res[ids["truncated"]]["decode"].detail
    assert "48x48" in res[ids["wrong_size"]]["decode"].detail
    assert "all black" in res[ids["black"]]["blank"].detail
    assert "flat" in res[ids["flat"]]["blank"].detail
    assert f"image {ids['first']}" in res[ids["duplicate"]]["duplicate"].detail
    real3 = ws.catalog.images(set_name="real")[3].id
    assert f"training image {real3}" in res[ids["memorised"]]["memorisation"].detail
    # the clean first image passes everything; undecodable ones get only the decode row
    assert all(r.passed for r in res[ids["first"]].values())
    assert set(res[ids["truncated"]]) == {"decode"}
    assert passed_ids(ws.catalog, "bad") == {ids["first"]}
    assert summary["failures_by_reason"]["decode"] == 2
    assert summary["failures_by_reason"]["blank"] == 3
    assert summary["passed_all"] == 1


def test_expected_size_from_config(qc_workspace):
    ws = qc_workspace(n_real=20, n_syn=2)
    cfg = ws.config.qc.model_copy(update={"expected_size": (32, 32)})
    summary = run_qc(ws, "syn", config=cfg)
    assert summary["failures_by_reason"] == {"decode": 2}
    detail = next(iter(ws.catalog.qc_results().values()))[0].detail
    assert "expected 32x32" in detail


def test_nan_pixels_fail_the_blank_check():
    arr = vessel(5).astype(np.float32)
    arr[3, 4, 1] = np.nan
    out = check_blank(measure(arr), ws_cfg := __import__("craftlora.config").config.QCConfig())
    assert not out.passed and "NaN" in out.detail
    assert check_blank(measure(vessel(5)), ws_cfg).passed


def test_rerun_checks_only_what_is_new(qc_workspace):
    ws = qc_workspace(n_real=30, n_syn=5)
    first = run_qc(ws, "syn")
    assert first["checked_now"]["blank"] == 5
    again = run_qc(ws, "syn")
    assert set(again["checked_now"].values()) == {0}
    new = add_png(ws, vessel(3000), "syn/new.png", origin="synthetic", set_name="syn")
    third = run_qc(ws, "syn")
    assert all(v == 1 for v in third["checked_now"].values()), third["checked_now"]
    assert new in passed_ids(ws.catalog, "syn")
    # a changed threshold reruns that check only, for every image
    cfg = ws.config.qc.model_copy(update={"flat_std": 3.0})
    fourth = run_qc(ws, "syn", config=cfg)
    assert fourth["checked_now"]["blank"] == 6
    assert sum(v for k, v in fourth["checked_now"].items() if k != "blank") == 0


class _ColourJudge(torch.nn.Module):
    """A hand-made judge that follows the classifier contract: red vs blue by channel means."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def features(self, x):
        return torch.nn.functional.avg_pool2d(x, 32).flatten(1) * self.scale

    def forward(self, x):
        r, b = x[:, 0].mean(dim=(1, 2)), x[:, 2].mean(dim=(1, 2))
        return {"glaze": torch.stack([r - b, b - r], dim=1)}


def test_judge_checks_agreement_and_feature_memorisation(qc_workspace, tmp_path):
    ws = qc_workspace(n_real=30, n_syn=4)
    model = _ColourJudge()
    ckpt = tmp_path / "judge.safetensors"
    save_file(dict(model.state_dict()), str(ckpt))
    judge = Judge(ckpt, model=model, meta={"labels": {"glaze": ["red", "blue"]},
                                           "image_size": 64, "mean": (0, 0, 0), "std": (1, 1, 1)})
    wrong = add_png(ws, vessel(4000, colour="red"), "syn/wrong.png", origin="synthetic",
                    set_name="syn", attributes={"glaze": "blue"})
    unlabelled = add_png(ws, vessel(4001), "syn/nolabel.png", origin="synthetic",
                         set_name="syn")
    real5 = np.asarray(Image.open(ws.root / "real/5.png")).astype(np.float32)
    noisy = real5 + np.random.default_rng(1).normal(0, 20, real5.shape)
    near = add_png(ws, np.clip(noisy, 0, 255).astype(np.uint8), "syn/near.png",
                   origin="synthetic", set_name="syn", attributes={"glaze": "red"})
    summary = run_qc(ws, "syn", judge=judge)
    res = _by_check(ws, [wrong, unlabelled, near])
    # too noisy for the hash/thumbnail test, but the judge's features give it away
    assert not res[near]["memorisation"].passed
    assert "domain features" in res[near]["memorisation"].detail
    assert not res[wrong]["agreement"].passed
    assert res[wrong]["agreement"].score == 0.0
    assert "glaze: red ≠ blue" in res[wrong]["agreement"].detail
    assert "agreement" not in res[unlabelled]
    assert "1 images have no intended attributes" in summary["skipped"]["agreement"]
    assert summary["checks"]["agreement"] == {"passed": 5, "failed": 1, "pass_rate": 5 / 6}
    assert summary["outlier_features"]["space"] == "domain"
    assert summary["judge"]["weights_sha256"] == sha256_file(ckpt)
    assert passed_ids(ws.catalog, "syn") == {
        r.id for r in ws.catalog.images(set_name="syn")} - {wrong, near}


def test_empty_set_and_tiny_reference_are_clear_errors(qc_workspace):
    ws = qc_workspace(n_real=3, n_syn=2)
    with pytest.raises(QCError, match="no images"):
        run_qc(ws, "nope")
    with pytest.raises(QCError, match="reference set has 3 usable images"):
        run_qc(ws, "syn")
