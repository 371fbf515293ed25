"""Style-block discovery on a tiny UNet where exactly one block is made to carry style."""

import torch

from craftlora.models.tiny import TinySpec, build_scheduler, build_unet
from craftlora.style.blocks import block_similarity, rank_blocks, transformer_blocks


def _content_only(unet, keep: str) -> None:
    """Every block but ``keep`` outputs a constant from self-attention (sees no image)."""
    for name, mod in unet.named_modules():
        if name.endswith(".attn1") and not name.startswith(keep + "."):
            with torch.no_grad():
                mod.to_v.weight.zero_()
                mod.to_out[0].weight.zero_()
                mod.to_out[0].bias.fill_(0.5)


def test_discovery_finds_the_style_block():
    torch.manual_seed(0)
    spec = TinySpec(image_size=16, vae_channels=(8,), unet_channels=(16, 32))
    unet = build_unet(spec).eval()
    blocks = transformer_blocks(unet)
    assert "mid_block.attentions.0" in blocks and len(blocks) >= 4
    style = "up_blocks.1.attentions.0"
    assert style in blocks
    _content_only(unet, style)
    g = torch.Generator().manual_seed(1)
    a = torch.randn(1, 4, 16, 16, generator=g)
    b = a + 0.8 * torch.randn(1, 4, 16, 16, generator=g)
    cond = torch.randn(1, 4, spec.text_width, generator=g)
    sched = dict(build_scheduler(spec).config)
    sims = block_similarity(unet, sched, a, b, cond, steps=4, segments=2)
    assert set(sims) == set(blocks)
    assert rank_blocks(sims, 1) == [style]
    for blk in blocks:
        assert len(sims[blk]["segments"]) == 2
        if blk != style:
            assert abs(sims[blk]["mean"] - 1.0) < 1e-5
    assert sims[style]["mean"] < 0.99


def test_cli_style_blocks(tmp_path, tiny_model, stitch_world):
    import json

    from typer.testing import CliRunner

    from craftlora.cli.main import app

    pair = [str(stitch_world / "beads" / "star-000.png"), str(stitch_world / "design" /
                                                               "star-000.png")]
    res = CliRunner().invoke(app, ["style", "blocks", "--model", str(tiny_model), "--pair",
                                   *pair, "--out", str(tmp_path / "b"), "--k", "2",
                                   "--steps", "3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["blocks"]) == 2 and set(out["blocks"]) <= set(out["similarity"])
    assert (tmp_path / "b" / "blocks.png").stat().st_size > 1000
    bad = CliRunner().invoke(app, ["style", "blocks", "--model", str(tiny_model), "--pair",
                                   pair[0], str(tmp_path / "missing.png"), "--out",
                                   str(tmp_path / "c")])
    assert bad.exit_code != 0 and "missing.png" in bad.output


SD15 = dict(block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=768, attention_head_dim=8, sample_size=64)
SD21 = {**SD15, "cross_attention_dim": 1024, "attention_head_dim": (5, 10, 20, 20),
        "use_linear_projection": True, "sample_size": 96}
SDXL = dict(block_out_channels=(320, 640, 1280), layers_per_block=2,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 10), cross_attention_dim=2048,
            attention_head_dim=(5, 10, 20), use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816, sample_size=128)


def test_full_size_architectures_name_their_blocks():
    """SD 1.5 / 2.1 have 16 transformer blocks; SDXL 11, among them the paper's four (built on
    the meta device: the layout without the weights)."""
    from diffusers import UNet2DConditionModel

    from craftlora.style.blocks import SDXL_STYLE_BLOCKS

    with torch.device("meta"):
        counts = {n: transformer_blocks(UNet2DConditionModel(**cfg))
                  for n, cfg in (("sd15", SD15), ("sd21", SD21), ("sdxl", SDXL))}
    assert len(counts["sd15"]) == len(counts["sd21"]) == 16
    assert len(counts["sdxl"]) == 11 and set(SDXL_STYLE_BLOCKS) <= set(counts["sdxl"])
