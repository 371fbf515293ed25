"""Train options for real-scale runs: attention kernel and the 8-bit optimiser's clear refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from craftlora.models.loader import _from_pipeline
from craftlora.models.tiny import TinySpec, build_tiny_pipeline
from craftlora.train.config import TrainConfig, TrainConfigError
from craftlora.train.setup import optimiser, setup_model, trainable


def _cfg(tmp_path: Path, **kw) -> TrainConfig:
    return TrainConfig.model_validate({"model": "tiny", "output_dir": str(tmp_path / "out"),
                                       "data": {"workspace": str(tmp_path)}, **kw})


def _unet_out(tmp_path: Path, attention: str) -> tuple[torch.Tensor, set[type]]:
    comp = _from_pipeline(build_tiny_pipeline(TinySpec(), seed=0), "tiny")
    setup = setup_model(_cfg(tmp_path, attention=attention), comp, torch.device("cpu"), 0)
    unet = setup.comp.unet
    g = torch.Generator().manual_seed(0)
    s = unet.config.sample_size
    x = torch.randn(2, unet.config.in_channels, s, s, generator=g)
    ctx = torch.randn(2, 8, unet.config.cross_attention_dim, generator=g)
    with torch.no_grad():
        y = unet(x, torch.tensor([10, 500]), ctx).sample
    return y, {type(p) for p in unet.attn_processors.values()}


def test_attention_option_sets_the_kernel_and_keeps_the_numbers(tmp_path: Path) -> None:
    y_sdpa, kinds_sdpa = _unet_out(tmp_path, "sdpa")
    y_eager, kinds_eager = _unet_out(tmp_path, "eager")
    assert kinds_sdpa == {AttnProcessor2_0} and kinds_eager == {AttnProcessor}
    torch.testing.assert_close(y_sdpa, y_eager, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="attention"):
        _cfg(tmp_path, attention="flash")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_8bit_adam_is_refused_clearly_without_a_gpu(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, optim={"optimizer": "adamw8bit"})
    params = trainable({"unet": torch.nn.Linear(2, 2)})
    with pytest.raises(TrainConfigError, match="adamw8bit' needs a CUDA GPU"):
        optimiser(cfg, params)
    opt, _ = optimiser(_cfg(tmp_path), params)
    assert type(opt) is torch.optim.AdamW
