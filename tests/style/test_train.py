"""The style-contrastive training mode: θ_e stays in the style blocks; resume equality; the
`craftlora train` mode from a config."""

import json

import torch
from safetensors.torch import load_file
from style_tiny import load, tiny_components
from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.train.style_mode import StyleSettings, train_style

BLOCKS = ["up_blocks.1.attentions.0"]


def _run(model, world, out, *, stop_after=None, design_update=True):
    s = StyleSettings(style_blocks=BLOCKS, rank=2, lr=1e-3, stage1_steps=3, stage2_steps=3,
                      contrastive_weight=1.0, save_every=2, seed=7, design_update=design_update)
    return train_style(tiny_components(model), load(world, "satin", "star-000"),
                       load(world, "design", "star-000"), "a red star",
                       [(load(world, "design", "moon-000"), "a blue moon")], s, out,
                       stop_after=stop_after)


def test_resume_equals_uninterrupted(tmp_path, stitch_world, tiny_model):
    whole = _run(tiny_model, stitch_world, tmp_path / "a")
    _run(tiny_model, stitch_world, tmp_path / "b", stop_after=4)  # killed after step 4 (stage 2)
    resumed = _run(tiny_model, stitch_world, tmp_path / "b")
    a, b = load_file(str(whole)), load_file(str(resumed))
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the run learned: the LoRA up-weights (zero at init) moved
    assert any(v.abs().max() > 0 for k, v in a.items() if "lora_B" in k)


def test_embroidery_updates_only_touch_style_blocks(tmp_path, stitch_world, tiny_model):
    path = _run(tiny_model, stitch_world, tmp_path / "c", design_update=False)
    sd = load_file(str(path))
    moved = {k for k, v in sd.items() if "lora_B" in k and v.abs().max() > 0}
    assert moved and all(k.startswith("unet." + BLOCKS[0] + ".") for k in moved)
    meta = json.loads((path.parent / "style_lora.json").read_text())
    assert meta["style_blocks"] == BLOCKS and meta["steps_done"] == 6


def test_train_command_style_mode(tmp_path, stitch_world, tiny_model):
    cfg = tmp_path / "train.toml"
    cfg.write_text(f"""
mode = "style-contrastive"
model = "{tiny_model}"
output_dir = "out"
seed = 3
checkpoint_every = 2
[lora]
rank = 2
[optim]
lr = 1e-3
[data]
workspace = "unused"
[style]
embroidery = "{stitch_world / 'cross' / 'star-000.png'}"
design = "{stitch_world / 'design' / 'star-000.png'}"
caption = "a red star"
blocks = {json.dumps(BLOCKS)}
expansion_designs = ["{stitch_world / 'design' / 'circle-000.png'}"]
expansion_captions = ["a green circle"]
stage1_steps = 2
stage2_steps = 1
""")
    res = CliRunner().invoke(app, ["train", str(cfg), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["step"] == 3 and (tmp_path / "out" / "pytorch_lora_weights.safetensors").exists()
    again = CliRunner().invoke(app, ["train", str(cfg)])
    assert again.exit_code != 0 and "--resume latest" in again.output
    bad = cfg.read_text().replace('mode = "style-contrastive"\n', "")
    cfg.write_text(bad)
    res = CliRunner().invoke(app, ["train", str(cfg)])
    assert res.exit_code != 0 and "style" in res.output
