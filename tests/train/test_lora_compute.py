"""Folded LoRA compute: same outputs and adapter gradients as peft's own path, chosen by cost."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, inject_adapter_in_model

from craftlora.train.lora_compute import fold_is_cheaper, folded_lora


class Two(torch.nn.Module):
    def __init__(self, wide: int = 64):
        super().__init__()
        self.narrow = torch.nn.Linear(48, 64)
        self.wide = torch.nn.Linear(wide, wide, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wide(torch.nn.functional.pad(self.narrow(x), (0, self.wide.in_features - 64)))


def _lora(model: torch.nn.Module, rank: int, dropout: float = 0.0,
          targets: tuple[str, ...] = ("narrow", "wide")) -> torch.nn.Module:
    torch.manual_seed(0)
    model = inject_adapter_in_model(
        LoraConfig(r=rank, lora_alpha=rank / 2, lora_dropout=dropout,
                   target_modules=list(targets)), model)
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)  # peft starts B at zero: make the adapter matter
    return model


def test_fold_rule_counts_multiply_adds():
    assert fold_is_cheaper(64, 64, 32)          # 4,096 < 3·32·128
    assert fold_is_cheaper(320, 320, 64)        # SD's first blocks at rank 64
    assert not fold_is_cheaper(640, 640, 64)    # 409,600 > 245,760
    assert not fold_is_cheaper(64, 64, 4)


def _grads(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    model.zero_grad(set_to_none=True)
    y = model(x)
    (y ** 2).mean().backward()
    return y.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_folded_forward_and_adapter_gradients_match_peft():
    model = _lora(Two(), rank=32)
    x = torch.randn(5, 7, 48)
    y_ref, g_ref = _grads(model, x)
    with folded_lora(model) as n:
        assert n == 2
        y, g = _grads(model, x)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    assert g.keys() == g_ref.keys() and len(g) == 4
    for k in g:
        torch.testing.assert_close(g[k], g_ref[k], atol=1e-5, rtol=1e-4)
    assert all("forward" not in m.__dict__ for m in model.modules())  # peft's forward is back


def test_folded_forward_matches_peft_on_half_base_weights_without_autocast():
    # a trainer's frozen weights in fp16, the adapter in fp32, no autocast (fp16 on a CPU):
    # the folded path used to pass the fp16 bias to an fp32 matmul and fail
    convs = _lora(Convs(), rank=8, targets=("small", "wide"))
    for model, x in ((_lora(Two(), rank=32), torch.randn(5, 7, 48)),
                     (convs, torch.randn(3, 8, 12, 12))):
        for name, p in model.named_parameters():
            if "lora_" not in name:
                p.data = p.data.half()
        x = x.half()
        with torch.no_grad():
            y_ref = model(x)
            with folded_lora(model) as n:
                assert n == 2
                y = model(x)
        assert y.dtype == y_ref.dtype == torch.float16
        torch.testing.assert_close(y, y_ref, atol=2e-2, rtol=2e-2)


def test_folding_skips_layers_where_it_costs_more_or_changes_the_maths():
    model = _lora(Two(wide=640), rank=16)    # 48→64 at rank 16 folds, 640×640 does not
    with folded_lora(model) as n:
        assert n == 1
        assert "forward" in model.narrow.__dict__ and "forward" not in model.wide.__dict__
    with folded_lora(_lora(Two(), rank=32, dropout=0.1)) as n:
        assert n == 0                        # dropout acts on the adapter input alone


def test_folding_is_undone_when_the_block_raises():
    model = _lora(Two(), rank=32)
    with pytest.raises(RuntimeError), folded_lora(model):
        raise RuntimeError("boom")
    assert all("forward" not in m.__dict__ for m in model.modules())


class Convs(torch.nn.Module):
    def __init__(self, wide: int = 24):
        super().__init__()
        self.small = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.wide = torch.nn.Conv2d(16, wide, 3, stride=2, padding=1)
        self.grouped = torch.nn.Conv2d(wide, wide, 3, padding=1, groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.grouped(self.wide(self.small(x)))


def test_conv_layers_fold_with_the_same_outputs_and_gradients():
    model = _lora(Convs(), rank=8, targets=("small", "wide", "grouped"))
    x = torch.randn(3, 8, 12, 12)
    y_ref, g_ref = _grads(model, x)
    with folded_lora(model) as n:
        # small 8·9 → 16 at rank 8 folds (1,152 < 2,112), wide 16·9 → 24 too (3,456 < 4,032);
        # a grouped conv never
        assert n == 2 and "forward" not in model.grouped.__dict__
        y, g = _grads(model, x)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    assert g.keys() == g_ref.keys() and len(g) == 6
    for k in g:
        torch.testing.assert_close(g[k], g_ref[k], atol=1e-5, rtol=1e-4)
    with folded_lora(_lora(Convs(wide=256), rank=8, targets=("small", "wide"))) as n:
        assert n == 1                        # 16·9 → 256 at rank 8: 36,864 > 9,600, not folded
