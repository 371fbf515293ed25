"""Style metrics on hand-made images and on the stitch world's exact ground truth."""

import numpy as np
from style_tiny import load

from craftlora.mini.stitch.render import read_labels
from craftlora.mini.stitch.styles import STYLES
from craftlora.style.metrics import StyleClassifier, hf_ratio, hfrd, hist_distance, mask_iou


def test_hf_ratio_and_hist_on_hand_made_images():
    flat = np.full((32, 32, 3), 128, np.uint8)
    assert hf_ratio(flat) == 0.0
    x = np.arange(32)
    fine = np.repeat(((x % 2) * 255).astype(np.uint8)[None, :, None], 32, 0).repeat(3, 2)
    coarse = np.repeat(((x // 16) * 255).astype(np.uint8)[None, :, None], 32, 0).repeat(3, 2)
    assert hf_ratio(fine) > 0.99  # all power at Nyquist
    assert hf_ratio(coarse) < 0.2
    assert abs(hfrd(fine, coarse) - (hf_ratio(fine) - hf_ratio(coarse))) < 1e-12
    black, white = np.zeros_like(flat), np.full_like(flat, 255)
    assert hist_distance(black, white) == 1.0 and hist_distance(black, black) == 0.0
    half = black.copy()
    half[:16] = 255
    assert abs(hist_distance(half, black) - 0.5) < 1e-12


def test_exact_metrics_on_the_stitch_world(stitch_world):
    rows = read_labels(stitch_world)
    train = [r["id"] for r in rows if r["split"] == "train"]
    test = [r["id"] for r in rows if r["split"] == "test"]
    clf = StyleClassifier([load(stitch_world, s, i) for s in STYLES for i in train],
                          [s for s in STYLES for _ in train])
    for s in STYLES:  # held-out motifs, true embroidery: the classifier names the style
        assert clf.predict([load(stitch_world, s, i) for i in test]) == [s] * len(test)
    for i in train + test:
        design = load(stitch_world, "design", i)
        mask = load(stitch_world, "mask", i)[..., 0] > 127
        assert mask_iou(design, design, mask) > 0.9  # exact up to anti-aliased edges
        assert mask_iou(load(stitch_world, "satin", i), design, mask) > 0.8
        shifted = np.roll(design, 8, axis=1)
        assert mask_iou(shifted, design, mask) < mask_iou(design, design, mask) - 0.1


def test_feature_distance_and_content_net_fallback(tmp_path):
    from craftlora.metrics.features import PixelExtractor
    from craftlora.mini.judge import JUDGES
    from craftlora.style.metrics import FeatureDistance, content_net

    fd = FeatureDistance(PixelExtractor(size=4))
    a = np.zeros((8, 8, 3), np.uint8)
    a[:, :4] = 255
    b = a[:, ::-1].copy()  # the mirror image: nearly orthogonal
    d = fd.distance([a, a], [a, b])
    assert abs(d[0]) < 1e-9 and d[1] > 0.8
    assert fd.id.startswith("pixels4") and "cosine" in fd.id
    net = content_net("lpips-alex", JUDGES / "judge-64.safetensors")
    assert net.id.startswith("lpips-alex") or net.id.startswith("domain:judge-64")
