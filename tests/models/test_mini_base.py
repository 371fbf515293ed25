"""The bundled mini base loads by name and generates a 64×64 image that follows a colour prompt."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler

from craftlora.models.loader import MINI_BASE, load_components


def test_mini_base_loads_by_name_and_generates() -> None:
    assert (MINI_BASE / "model_index.json").is_file()
    comp = load_components("mini-base")
    pipe = comp.pipeline(DPMSolverMultistepScheduler.from_config(
        comp.noise_scheduler.config, use_karras_sigmas=True))
    out = {}
    for colour in ("red", "blue"):
        g = torch.Generator().manual_seed(0)
        im = pipe(f"a {colour} ball on a plain grey floor under bright light",
                  num_inference_steps=8, guidance_scale=4.0, height=64, width=64,
                  generator=g, output_type="np").images[0]
        assert im.shape == (64, 64, 3)
        out[colour] = im
    # the colour word steers the image: red prompt redder than the blue one, and vice versa
    red, blue = out["red"], out["blue"]
    assert (red[..., 0] - red[..., 2]).mean() > (blue[..., 0] - blue[..., 2]).mean()
    assert np.isfinite(red).all() and red.std() > 0.02
