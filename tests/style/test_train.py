"""The style-contrastive training loop: θ_e updates stay in the style blocks; resume equality."""

import torch
from safetensors.torch import load_file
from style_tiny import load, tiny_components

from craftlora.style.train import StyleSettings, train_style

BLOCKS = ["up_blocks.1.attentions.0"]


def _run(tmp_path, world, name, *, stop_after=None, design_update=True):
    comp = tiny_components(tmp_path / name)
    s = StyleSettings(style_blocks=BLOCKS, rank=2, lr=1e-3, stage1_steps=3, stage2_steps=3,
                      contrastive_weight=1.0, save_every=2, seed=7, design_update=design_update)
    return train_style(comp, load(world, "satin", "star-000"), load(world, "design", "star-000"),
                       "a red star", [(load(world, "design", "moon-000"), "a blue moon")], s,
                       tmp_path / name / "out", stop_after=stop_after), comp


def test_resume_equals_uninterrupted(tmp_path, stitch_world):
    whole, _ = _run(tmp_path, stitch_world, "a")
    _run(tmp_path, stitch_world, "b", stop_after=4)  # killed after step 4 (in stage 2)
    resumed, _ = _run(tmp_path, stitch_world, "b")
    a, b = load_file(str(whole)), load_file(str(resumed))
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_embroidery_updates_only_touch_style_blocks(tmp_path, stitch_world):
    path, comp = _run(tmp_path, stitch_world, "c", design_update=False)
    sd = load_file(str(path))
    moved = {k for k, v in sd.items() if "lora_B" in k and v.abs().max() > 0}
    assert moved and all(k.startswith("unet." + BLOCKS[0] + ".") for k in moved)
