"""Specular mask scores on a hand-made highlight."""

import numpy as np
import pytest

from craftlora.data.specular import (
    SpecularConfig,
    highlight_area,
    mask_iou,
    reduce_specular,
    restore_error,
    soft_iou,
    specular_mask,
)


def test_mask_iou_by_hand():
    truth = np.zeros((8, 8), np.float32)
    truth[2:6, 2:6] = 1.0  # 16 px
    pred = np.zeros((8, 8), np.float32)
    pred[3:7, 3:7] = 0.8  # 16 px, 9 shared → 9 / 23
    assert mask_iou(pred, truth) == pytest.approx(9 / 23)
    assert mask_iou(pred, truth, threshold=0.9) == 0.0
    assert soft_iou(pred, truth) == pytest.approx(9 * 0.8 / (16 + 16 * 0.8 - 9 * 0.8))
    assert mask_iou(np.zeros((8, 8)), np.zeros((8, 8))) is None
    with pytest.raises(ValueError, match="shapes differ"):
        mask_iou(pred, truth[:4])


def test_estimator_finds_a_painted_white_highlight():
    img = np.full((32, 32, 3), (150, 20, 20), np.uint8)  # red lacquer
    img[10:20, 8:24] = 255  # a white highlight, 160 px
    truth = np.zeros((32, 32), np.float32)
    truth[10:20, 8:24] = 1.0
    cfg = SpecularConfig(sigma=0.0)
    assert mask_iou(specular_mask(img, cfg), truth) == 1.0
    assert highlight_area(img, cfg) == pytest.approx(160 / 1024)
    clean = np.full((32, 32, 3), (150, 20, 20), np.uint8)
    restored = reduce_specular(img, SpecularConfig(sigma=0.0, alpha=0.7))
    inside = truth > 0
    # 255 · 0.3 = 76.5 → 76 or 77 in every channel; the error there drops from the glossy one
    assert restore_error(restored, clean, inside) < restore_error(img, clean, inside)
    assert restore_error(restored, clean, ~inside) == 0.0
