"""Single-file (A1111 / ComfyUI, original LDM layout) checkpoints load through the one loader."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors import safe_open

from craftlora.models.ldm_layout import save_ldm_checkpoint, unet_to_ldm, vae_to_ldm
from craftlora.models.loader import ModelSourceError, load_components
from craftlora.models.tiny import TinySpec, save_tiny_pipeline

torch.set_num_threads(1)

# Down blocks without and with cross-attention, two layers each: the up blocks then have an
# upsampler both at slot 1 (plain block) and slot 2 (after an attention), as SD 1.5 does.
SPEC = TinySpec(unet_channels=(16, 32, 32), unet_attention=(False, False, True), unet_layers=2)


def _images(comp) -> torch.Tensor:
    return comp.pipeline()("a red vase", num_inference_steps=3, height=32, width=32,
                           output_type="pt", generator=torch.Generator().manual_seed(0)).images


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny diffusers model, its LDM single file, and a config folder holding no weights."""
    root = tmp_path_factory.mktemp("single")
    folder = save_tiny_pipeline(SPEC, root / "model", seed=0, corpus=["a red vase"])
    comp = load_components(folder)
    with torch.no_grad():  # no zero-initialised tensor may hide a mix-up
        for m in (comp.unet, comp.vae, comp.text_encoder):
            for p in m.parameters():
                p.add_(torch.randn_like(p) * 0.02)
    ckpt = save_ldm_checkpoint(comp.unet, comp.vae, comp.text_encoder, root / "tiny.safetensors")
    config = root / "config"
    shutil.copytree(folder, config, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return comp, ckpt, config


def test_single_file_gives_the_same_model_and_images(checkpoint):
    comp, ckpt, config = checkpoint
    with safe_open(str(ckpt), framework="pt") as f:
        keys = set(f.keys())
        assert f.get_slice("first_stage_model.encoder.mid.attn_1.q.weight").get_shape()[2:] == \
            [1, 1]
    assert "model.diffusion_model.input_blocks.0.0.weight" in keys
    assert "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight" in keys
    assert not any("down_blocks" in k or "resnets" in k for k in keys)  # no diffusers names left
    assert not list(config.rglob("*.safetensors"))  # every weight must come from the single file

    loaded = load_components(ckpt, config=config, allow_network=False)
    assert loaded.kind == "sd" and loaded.source == str(ckpt)
    for name in ("unet", "vae", "text_encoder"):
        want, got = getattr(comp, name).state_dict(), getattr(loaded, name).state_dict()
        assert want.keys() == got.keys(), name
        for k in want:
            assert torch.equal(want[k], got[k]), f"{name}.{k}"
    reference = _images(comp)
    assert reference.std() > 0.01
    torch.testing.assert_close(_images(loaded), reference, atol=0, rtol=0)


def test_single_file_offline_without_a_matching_config(checkpoint, tmp_path):
    """A tiny file matches no shipped full-size config; a folder that is no model is refused."""
    _, ckpt, _ = checkpoint
    with pytest.raises(ModelSourceError, match="not those of the shipped sd15 config"):
        load_components(ckpt, allow_network=False)
    with pytest.raises(ModelSourceError, match="local diffusers folder"):
        load_components(ckpt, config=tmp_path, allow_network=False)


def test_sd15_key_layout_on_meta_weights():
    """At SD 1.5 size the converter writes the names real SD 1.5 checkpoints use."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8)
        vae = AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(128, 256, 512, 512), layers_per_block=2)
    u = unet_to_ldm(unet.state_dict(), unet.config)
    v = vae_to_ldm(vae.state_dict(), vae.config)
    assert len(u) == len(unet.state_dict()) == 686 and len(v) == len(vae.state_dict())
    for k in ("input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
              "input_blocks.3.0.op.weight",
              "input_blocks.11.0.out_layers.3.weight", "middle_block.1.proj_in.weight",
              "middle_block.2.emb_layers.1.bias", "output_blocks.2.1.conv.weight",
              "output_blocks.5.2.conv.weight", "output_blocks.11.0.skip_connection.weight",
              "output_blocks.11.1.transformer_blocks.0.ff.net.2.weight", "out.2.weight",
              "time_embed.2.weight"):
        assert k in u, k
    assert "output_blocks.11.2.conv.weight" not in u and "input_blocks.12.0.op.weight" not in u
    for k in ("encoder.down.0.block.0.conv1.weight", "encoder.down.1.block.0.nin_shortcut.weight",
              "encoder.down.2.downsample.conv.weight", "decoder.up.3.upsample.conv.weight",
              "decoder.up.0.block.2.conv2.weight", "decoder.up.1.block.0.nin_shortcut.weight",
              "decoder.mid.attn_1.proj_out.weight", "encoder.norm_out.bias",
              "post_quant_conv.bias"):
        assert k in v, k
    assert "encoder.down.3.downsample.conv.weight" not in v
    assert "decoder.up.0.upsample.conv.weight" not in v
