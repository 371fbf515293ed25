"""Inference loads only the style blocks' keys; the LAB fix keeps lightness, takes colour."""

import numpy as np
import pytest
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


def test_control_image_conditions():
    from craftlora.style.stylize import control_image

    design = np.zeros((64, 64, 3), np.uint8)
    design[16:48, 16:48] = (200, 40, 40)
    edges = control_image(design, "canny")
    assert edges.shape == design.shape
    ring = edges[..., 0] > 0
    assert ring[15:17, 20:44].any(axis=0).all()  # the square's top edge
    assert not ring[20:44, 20:44].any() and not ring[:12].any()  # nothing inside or away
    tile = control_image(design, "tile")
    assert tile[32, 32, 0] == 200 and 40 < tile[16, 32, 0] < 190 and tile[15, 32, 0] > 20  # a blur
    with pytest.raises(ValueError, match="'depth'"):
        control_image(design, "depth")


def test_stylize_through_the_shipped_mini_controlnet(stitch_world):
    from craftlora.generate.controlnet import load_controlnet
    from craftlora.models.loader import load_components

    comp = load_components("mini")
    design = load(stitch_world, "design", "moon-000")
    if design.shape[0] != 64:
        import cv2

        design = cv2.resize(design, (64, 64), interpolation=cv2.INTER_AREA)
    net = load_controlnet("mini")
    kw = {"strength": 0.8, "steps": 4, "seed": 0, "colour_fix": False}
    plain = stylize(comp, [design], ["a moon"], **kw)[0]
    canny = stylize(comp, [design], ["a moon"], controlnet=net, control="canny",
                    control_scale=1.0, **kw)[0]
    tile = stylize(comp, [design], ["a moon"], controlnet=net, control="tile",
                   control_scale=1.0, **kw)[0]
    assert canny.shape == plain.shape == design.shape
    assert not np.array_equal(plain, canny) and not np.array_equal(canny, tile)
    again = stylize(comp, [design], ["a moon"], controlnet=net, control="canny",
                    control_scale=1.0, **kw)[0]
    assert np.array_equal(canny, again)  # seeded


def test_stylize_cli_with_a_controlnet(tmp_path, stitch_world):
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from craftlora.cli.main import app
    from craftlora.models.loader import load_components
    from craftlora.train.style_mode import META_NAME

    comp = load_components("mini")
    block = "up_blocks.1.attentions.0"
    add_lora(comp.unet, rank=2, alpha=2.0)
    path = save_diffusers_lora(tmp_path, {"unet": (lora_state_dict(comp.unet),
                                                   adapter_config(comp.unet))})
    (tmp_path / META_NAME).write_text(json.dumps({"style_blocks": [block]}))
    design = tmp_path / "design.png"
    Image.fromarray(load(stitch_world, "design", "moon-000")).resize((64, 64)).save(design)
    args = ["stylize", "--style", str(path), "--image", str(design), "--steps", "2", "--json"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o.png"),
                                   "--controlnet", "mini", "--control", "tile"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["style_blocks"] == [block] and doc["lora_modules"] > 0
    assert Image.open(tmp_path / "o.png").size == (64, 64)
    bad = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "p.png"),
                                   "--controlnet", "mini", "--control", "depth"])
    assert bad.exit_code != 0 and "'depth'" in bad.output
    assert not (tmp_path / "p.png").exists()
    text = CliRunner().invoke(app, ["stylize", "--style", str(path), "--prompt", "a moon",
                                    "--out", str(tmp_path / "q.png"), "--controlnet", "mini"])
    assert text.exit_code != 0 and "--image" in text.output
