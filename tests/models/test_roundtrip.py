"""The VAE round trip the judge, the QC and the ControlNet ceiling use."""

import numpy as np
import torch

from craftlora.mini.kiln import valid_combinations
from craftlora.mini.vessel import render_vessel
from craftlora.models.loader import load_components
from craftlora.models.roundtrip import roundtrip_images, roundtrip_pixels
from craftlora.qc.measure import measure


def test_the_mini_vae_round_trip_keeps_colour_and_layout_but_softens_detail():
    vae = load_components("mini").vae
    images = [render_vessel(c, np.random.default_rng([5, i]), size=64)[0]
              for i, c in enumerate(valid_combinations()[::32])]
    px = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    rec = roundtrip_pixels(vae, px, batch=3)  # batches that do not divide the set
    assert rec.dtype == torch.uint8 and rec.shape == px.shape
    # measured: mean absolute error 0.037, per-image mean colour within 0.021
    assert ((rec.float() - px.float()).abs().mean() / 255) < 0.06
    assert ((rec.float().mean((2, 3)) - px.float().mean((2, 3))).abs().max() / 255) < 0.04
    # measured: median Laplacian variance 1226 → 60 (the 64 px decoder's blur)
    sharp = [measure(np.ascontiguousarray(a)).sharpness for a in images]
    soft = [measure(np.ascontiguousarray(a)).sharpness for a in rec.permute(0, 2, 3, 1).numpy()]
    assert np.median(soft) < 0.2 * np.median(sharp)
    # the array form is the same round trip in (H, W, 3) layout
    arrays = roundtrip_images(vae, images, batch=5)
    assert all((a == r.permute(1, 2, 0).numpy()).all() for a, r in zip(arrays, rec, strict=True))
    assert roundtrip_images(vae, []) == []
