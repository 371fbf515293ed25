"""ControlNet training from a tiny base UNet: trains, saves safetensors, reloads, guides."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from craftlora.generate.contour import evaluate_contour
from craftlora.generate.controlnet import load_controlnet
from craftlora.mini.outlines import mini_outline_triples
from craftlora.models.condition import outline
from craftlora.train.controlnet import ControlNetTrainConfig, train_controlnet


def _triples(n=6, size=16):
    out = []
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        r = 3 + i % 4
        mask = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= r * r
        img = np.full((size, size, 3), 230, np.uint8)
        img[mask] = (40 * i % 255, 90, 160)
        out.append((outline(mask), img, "a white bowl"))
    return out


def test_outline_is_the_boundary():
    mask = np.zeros((9, 9), bool)
    mask[2:7, 2:7] = True
    edge = outline(mask)
    assert edge.sum() == 16 and not edge[4, 4] and edge[2, 2] and not edge[0, 0]


def test_train_controlnet_saves_and_changes_weights(tmp_path, gen_tiny_pipe):
    unet_before = {k: v.clone() for k, v in gen_tiny_pipe.unet.state_dict().items()}
    cfg = ControlNetTrainConfig(steps=3, batch_size=2, log_every=1, lr=1e-3)
    summary = train_controlnet(gen_tiny_pipe, _triples(), tmp_path / "cn", cfg, progress=False)
    assert summary["steps"] == 3 and len(summary["loss_curve"]) == 3
    assert all(np.isfinite(summary["loss_curve"]))
    assert (tmp_path / "cn" / "diffusion_pytorch_model.safetensors").is_file()
    assert (tmp_path / "cn" / "train.json").is_file()
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())
    # the base stays frozen
    for k, v in gen_tiny_pipe.unet.state_dict().items():
        assert torch.equal(v, unet_before[k]), k
    cn = load_controlnet(tmp_path / "cn")
    # zero-initialised output convs moved off zero: the ControlNet learned something
    assert cn.controlnet_mid_block.weight.abs().sum() > 0
    assert summary["conditioning_channels"] == [16, 32]
    res = evaluate_contour(gen_tiny_pipe, cn, _triples(2), steps=2, batch_size=2)
    assert res["images"] == 2 and 0.0 <= res["tolerant_f1_mean"] <= 1.0


def test_mini_outline_triples_cover_combinations():
    pytest.importorskip("craftlora.mini.vessel")
    triples = mini_outline_triples(3, seed=0, size=32)
    assert len(triples) == 3
    for edges, img, caption in triples:
        assert edges.shape == (32, 32) and edges.any() and img.shape == (32, 32, 3)
        assert "dynasty" in caption


def test_silhouette_segmenter_learns_outlines(tmp_path):
    pytest.importorskip("craftlora.mini.vessel")
    from craftlora.generate.silhouette import (
        load_silhouette,
        save_silhouette,
        train_silhouette,
        vessel_outlines,
    )
    from craftlora.metrics.contour import tolerant_edge_f1
    from craftlora.mini.outlines import mini_masks

    x, y = mini_masks(48, seed=1, size=32)
    net, info = train_silhouette(x, y, steps=60, batch_size=16, width=8)
    assert info["loss_last"] < info["loss_first"]
    imgs = [(xi.permute(1, 2, 0).numpy() * 255).astype(np.uint8) for xi in x[:4]]
    pred = vessel_outlines(net, imgs)
    truth = [outline(m[0].numpy() > 0.5) for m in y[:4]]
    f1 = np.mean([tolerant_edge_f1(p, t, 2) for p, t in zip(pred, truth, strict=True)])
    assert f1 > 0.3  # 60 tiny steps: learning has begun (150 s of training gives ~0.99)
    path = tmp_path / "sil.safetensors"
    save_silhouette(net, path, info)
    again = load_silhouette(path)
    assert all(
        np.array_equal(a, b) for a, b in zip(vessel_outlines(again, imgs), pred, strict=True)
    )
