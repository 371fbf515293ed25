"""bench.real_scale's pieces: the full-size configs are the published architectures (counted on
the meta device), and the speed levers change no number and leave the pipeline as it was."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root holds bench/

from bench.real_scale import parameter_counts  # noqa: E402

from craftlora.models.fast import levers_applied  # noqa: E402
from craftlora.models.lora import add_lora  # noqa: E402
from craftlora.models.tiny import TinySpec, build_tiny_pipeline  # noqa: E402

# parameter counts of the published checkpoints' diffusers components
PUBLISHED = {
    "sd15": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sd21": {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
    "sdxl": {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480,
             "text_encoder_2": 694_659_840},
}


@pytest.mark.parametrize("family", sorted(PUBLISHED))
def test_configs_are_the_published_architectures(family: str) -> None:
    assert parameter_counts(family) == PUBLISHED[family]


def _forward(unet: torch.nn.Module) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    s = unet.config.sample_size
    x = torch.randn(2, unet.config.in_channels, s, s, generator=g)
    ctx = torch.randn(2, 8, unet.config.cross_attention_dim, generator=g)
    with torch.no_grad():
        return unet(x, torch.tensor([10, 500]), ctx).sample


def test_levers_keep_the_numbers_and_restore_the_unet() -> None:
    pipe = build_tiny_pipeline(TinySpec(), seed=0)
    ref, keys = _forward(pipe.unet), set(pipe.unet.state_dict())
    for levers in (["fused_qkv"], ["channels_last"], ["fused_qkv", "channels_last"]):
        with levers_applied(pipe, levers) as record:
            assert record == dict.fromkeys(levers, "on")
            torch.testing.assert_close(_forward(pipe.unet), ref, atol=1e-5, rtol=1e-5)
        assert set(pipe.unet.state_dict()) == keys  # no fused copies left behind
        torch.testing.assert_close(_forward(pipe.unet), ref, atol=0, rtol=0)
    with pytest.raises(ValueError, match="unknown speed lever"), levers_applied(pipe, ["turbo"]):
        pass


def test_bf16_rounds_the_unet_and_gives_back_its_exact_weights() -> None:
    pipe = build_tiny_pipeline(TinySpec(), seed=0)
    # buffers outside the state dict: a float one goes back to float32, an integer one untouched
    pipe.unet.register_buffer("scale_table", torch.linspace(0, 1, 5), persistent=False)
    pipe.unet.register_buffer("step_ids", torch.arange(5), persistent=False)
    ref, before = _forward(pipe.unet), {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    storage = {k: v.data_ptr() for k, v in pipe.unet.state_dict().items()}
    with levers_applied(pipe, ["fused_qkv", "bf16"]) as record:
        assert record == {"fused_qkv": "on", "bf16": "on"}
        assert next(pipe.unet.parameters()).dtype == torch.bfloat16
        out = _forward(pipe.unet)
        assert out.dtype == torch.float32  # the caller's dtype
        err = (out - ref).abs().max().item()
        assert 0 < err < 0.05 * ref.abs().max().item()  # rounded, not broken
    after = pipe.unet.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)  # exact fp32 weights back
    # the very tensors that went in: restoring made no third copy of the weights
    assert {k: v.data_ptr() for k, v in after.items()} == storage
    assert pipe.unet.scale_table.dtype == torch.float32
    assert pipe.unet.step_ids.dtype == torch.int64
    assert pipe.unet.step_ids.tolist() == [0, 1, 2, 3, 4]
    torch.testing.assert_close(_forward(pipe.unet), ref, atol=0, rtol=0)


def test_fusion_is_skipped_when_lora_adapters_would_be_bypassed() -> None:
    pipe = build_tiny_pipeline(TinySpec(), seed=0)
    add_lora(pipe.unet, rank=2, alpha=2.0)
    for name, p in pipe.unet.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)
    ref = _forward(pipe.unet)
    with levers_applied(SimpleNamespace(unet=pipe.unet), ["fused_qkv"]) as record:
        assert record["fused_qkv"].startswith("skipped")
        torch.testing.assert_close(_forward(pipe.unet), ref, atol=0, rtol=0)


def test_a_family_that_does_not_fit_is_skipped_with_the_reason(tmp_path: Path) -> None:
    from bench.real_scale import measure_family

    a = SimpleNamespace(device="cpu", reserve_gib=10_000.0, precisions=["fp32"])
    row = measure_family("sdxl", a)
    assert row["parameters"] == PUBLISHED["sdxl"] and "fp32" not in row
    assert row["skipped"].startswith("needs about 21.4 GiB per arm (fp32 weights 12.9 GiB)")
