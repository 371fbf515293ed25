"""LoRA file forms: the kohya file (true alpha ≠ rank) and the diffusers file give the same images."""  # noqa: E501

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from craftlora.models.lora import (
    TEXT_ATTENTION,
    LoraFormatError,
    adapter_config,
    add_lora,
    diffusers_file_to_kohya,
    lora_state_dict,
    read_lora_file,
    save_diffusers_lora,
    save_kohya_lora,
    select_modules,
)
from craftlora.models.lora_import import kohya_file_to_diffusers, load_lora, pipeline_models
from craftlora.models.tiny import build_tiny_pipeline

torch.set_num_threads(1)


def _images(pipe) -> torch.Tensor:
    out = pipe("a red vase", num_inference_steps=3, height=32, width=32, output_type="pt",
               generator=torch.Generator().manual_seed(0)).images
    return out


@pytest.fixture(scope="module")
def trained_lora(tmp_path_factory):
    """A tiny pipeline with random non-zero LoRA (UNet rank 4 alpha 12, TE rank 2 alpha 1)."""
    d = tmp_path_factory.mktemp("lora")
    pipe = build_tiny_pipeline(seed=0, workdir=d)
    add_lora(pipe.unet, rank=4, alpha=12.0, init=False)
    add_lora(pipe.text_encoder, rank=2, alpha=1.0, targets=TEXT_ATTENTION, init=False)
    torch.manual_seed(1)
    with torch.no_grad():
        for m in (pipe.unet, pipe.text_encoder):
            for n, p in m.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 0.3)
    parts = {"unet": (lora_state_dict(pipe.unet), adapter_config(pipe.unet)),
             "text_encoder": (lora_state_dict(pipe.text_encoder),
                              adapter_config(pipe.text_encoder))}
    save_diffusers_lora(d, parts)
    save_kohya_lora(d / "k.safetensors", parts, unet_config=pipe.unet.config,
                    metadata={"ss_seed": 0})
    return d, _images(pipe)


def test_kohya_and_diffusers_forms_give_the_same_images(trained_lora):
    d, reference = trained_lora
    base = build_tiny_pipeline(seed=0, workdir=d / "b")
    plain = _images(base)
    assert (plain - reference).abs().max() > 1e-2  # the LoRA matters
    base.load_lora_weights(str(d / "pytorch_lora_weights.safetensors"), adapter_name="p")
    torch.testing.assert_close(_images(base), reference, atol=1e-5, rtol=0)
    base.unload_lora_weights()
    base.load_lora_weights(str(d / "k.safetensors"), adapter_name="k")
    torch.testing.assert_close(_images(base), reference, atol=1e-5, rtol=0)


def test_kohya_keys_alpha_and_metadata(trained_lora):
    d, _ = trained_lora
    sd, meta = read_lora_file(d / "k.safetensors")
    q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    assert sd[f"{q}.lora_down.weight"].shape[0] == 4
    assert float(sd[f"{q}.alpha"]) == 12.0  # not the rank
    te = "lora_te_text_model_encoder_layers_0_self_attn_q_proj"
    assert float(sd[f"{te}.alpha"]) == 1.0 and sd[f"{te}.lora_up.weight"].shape[1] == 2
    # 14 UNet attentions × 4, 2 CLIP layers × 4; the UNet (rank 4, alpha 12) and the text
    # encoder (rank 2, alpha 1) differ: sd-scripts' word for that is "Dynamic", and the
    # per-part figures are spelled out beside it
    assert meta["ss_network_dim"] == "Dynamic" and meta["ss_network_alpha"] == "Dynamic"
    assert json.loads(meta["craftlora_network_parts"]) == {
        "text_encoder": {"modules": 8, "linear_dims": [2], "linear_alphas": [1.0]},
        "unet": {"modules": 56, "linear_dims": [4], "linear_alphas": [12.0]}}
    assert meta["ss_network_module"] == "networks.lora" and meta["ss_seed"] == "0"
    assert meta["ss_v2"] == "False" and meta["ss_base_model_version"] == "sd_v1"
    assert "ss_network_args" not in meta  # no 3×3 conv modules


def test_conversion_both_ways_is_lossless(trained_lora, tmp_path):
    d, _ = trained_lora
    pipe = build_tiny_pipeline(seed=0, workdir=tmp_path)
    diffusers_file_to_kohya(d / "pytorch_lora_weights.safetensors", tmp_path / "k2.safetensors",
                            unet_config=pipe.unet.config)
    k1, k2 = load_file(str(d / "k.safetensors")), load_file(str(tmp_path / "k2.safetensors"))
    assert k1.keys() == k2.keys() and all(torch.equal(k1[k], k2[k]) for k in k1)
    kohya_file_to_diffusers(d / "k.safetensors", tmp_path,
                            {"unet": pipe.unet, "text_encoder": pipe.text_encoder})
    a = load_file(str(d / "pytorch_lora_weights.safetensors"))
    b = load_file(str(tmp_path / "pytorch_lora_weights.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_block_filter_and_bad_files(tmp_path):
    pipe = build_tiny_pipeline(seed=0, workdir=tmp_path)
    up = select_modules(pipe.unet, ["to_q", "to_k"], [r"^up_blocks\.1\."])
    assert up and all(n.startswith("up_blocks.1.") for n in up)
    with pytest.raises(LoraFormatError, match="no module"):
        select_modules(pipe.unet, ["to_q"], [r"^nowhere"])
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(LoraFormatError, match="bad.safetensors"):
        read_lora_file(bad)


def test_load_lora_serves_a_pipeline_like_load_lora_weights(trained_lora):
    """craftlora's reader as a drop-in for ``pipe.load_lora_weights``: the pipeline's own
    ``set_adapters`` (per-part weights, as generation and compare call it) drives the adapter."""
    d, reference = trained_lora
    pipe = build_tiny_pipeline(seed=0, workdir=d / "c")
    plain = _images(pipe)
    load_lora(pipeline_models(pipe), d / "k.safetensors", adapter_name="k")
    assert pipe.get_list_adapters() == {"unet": ["k"], "text_encoder": ["k"]}
    pipe.set_adapters(["k"], adapter_weights=[{"unet": 1.0, "text_encoder": 1.0}])
    torch.testing.assert_close(_images(pipe), reference, atol=1e-5, rtol=0)
    pipe.set_adapters(["k"], adapter_weights=[{"unet": 0.0, "text_encoder": 0.0}])
    torch.testing.assert_close(_images(pipe), plain, atol=1e-5, rtol=0)
