"""Specular highlight reduction I·(1 − α·M_spec) on a crafted glossy image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from craftlora.data.specular import SpecularConfig, reduce_specular, specular_mask


def _glossy() -> np.ndarray:
    img = np.zeros((48, 48, 3), np.uint8)
    img[:] = (150, 20, 20)  # saturated red lacquer
    img[20:28, 20:28] = (255, 255, 255)  # a clipped white highlight
    return img


def test_mask_marks_the_highlight_not_the_body():
    m = specular_mask(_glossy())
    assert m.dtype == np.float32 and m.shape == (48, 48)
    assert m[24, 24] > 0.9 and m[5, 5] == 0.0
    # without smoothing the mask is the formula: V = 1, S = 0 → 1; red body → 0
    raw = specular_mask(_glossy(), SpecularConfig(sigma=0))
    assert raw[24, 24] == pytest.approx(1.0, abs=1e-5) and raw[:20].max() == 0.0


def test_reduction_scales_by_one_minus_alpha_mask():
    img = _glossy()
    out = np.asarray(reduce_specular(Image.fromarray(img)))
    m = specular_mask(img)
    expect = np.clip(np.rint(img * (1 - 0.7 * m)[..., None]), 0, 255)
    assert np.abs(out.astype(int) - expect).max() <= 1
    assert out[24, 24, 0] == pytest.approx(255 * (1 - 0.7 * m[24, 24]), abs=1)
    assert (out[:10] == img[:10]).all()  # away from the highlight nothing changes
    assert (np.asarray(reduce_specular(img, SpecularConfig(alpha=0.0))) == img).all()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        specular_mask(np.zeros((4, 4), np.float32))
