"""Inference loads only the style blocks' keys; the LAB fix keeps lightness, takes colour."""

import numpy as np
import torch
from style_tiny import load, tiny_components

from craftlora.models.lora import adapter_config, add_lora, lora_state_dict, save_diffusers_lora
from craftlora.style.stylize import lab_colour_fix, load_style_lora, style_state_dict, stylize

STYLE = ["up_blocks.1.attentions.0"]


def test_only_style_block_keys_are_loaded(tmp_path, tiny_model, stitch_world):
    comp = tiny_components(tiny_model)
    torch.manual_seed(0)
    add_lora(comp.unet, rank=2, alpha=2.0)
    for n, p in comp.unet.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.1)
    sd = lora_state_dict(comp.unet)
    path = save_diffusers_lora(tmp_path, {"unet": (sd, adapter_config(comp.unet))})
    kept = style_state_dict({f"unet.{k}": v for k, v in sd.items()}, STYLE)
    assert kept and len(kept) < len(sd)
    assert all(k.startswith(STYLE[0] + ".") for k in kept)

    fresh = tiny_components(tiny_model)
    modules = load_style_lora(fresh.unet, path, STYLE)
    assert modules and all(m.startswith(STYLE[0] + ".") for m in modules)
    loaded = lora_state_dict(fresh.unet)
    assert loaded.keys() == kept.keys()
    for k in kept:
        assert torch.equal(loaded[k], kept[k])
    design = load(stitch_world, "design", "moon-000")
    out = stylize(fresh, [design], ["a blue moon in stitchwork style"], strength=0.5, steps=4)[0]
    assert out.shape == design.shape and out.dtype == np.uint8


def test_lab_colour_fix():
    rng = np.random.default_rng(0)
    grey = rng.integers(90, 170, (8, 8, 1))
    out = np.clip(grey + rng.integers(-8, 9, (8, 8, 3)), 0, 255).astype(np.uint8)
    design = np.zeros_like(out)
    design[...] = (170, 120, 110)  # a muted red, inside the gamut at these lightnesses
    fixed = lab_colour_fix(out, design)
    import cv2

    lo, lf = cv2.cvtColor(out, cv2.COLOR_RGB2LAB), cv2.cvtColor(fixed, cv2.COLOR_RGB2LAB)
    ld = cv2.cvtColor(design, cv2.COLOR_RGB2LAB)
    assert np.abs(lf[..., 0].astype(int) - lo[..., 0]).mean() < 6  # lightness kept
    assert np.abs(lf[..., 1:].astype(int) - ld[..., 1:]).mean() < 12  # colour from the design
