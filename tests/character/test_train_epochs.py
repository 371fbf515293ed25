"""The trainer counts repeats × epochs as kohya does, with shuffled captions and kept tags."""

from __future__ import annotations

import torch
from tiny_train import build_workspace, write_config

from craftlora.models.tiny import TinySpec, save_tiny_pipeline
from craftlora.train.config import load_train_config
from craftlora.train.trainer import train

torch.set_num_threads(1)


def test_epochs_and_repeats_set_the_step_count(tmp_path):
    model = save_tiny_pipeline(TinySpec(), tmp_path / "model", seed=0,
                               corpus=["a red vase", "a blue bowl", "a green vase"])
    ws = build_workspace(tmp_path / "ws", n=5)
    cfg = load_train_config(write_config(
        tmp_path / "c.toml", model, ws, tmp_path / "out", epochs=2, batch_size=4,
        checkpoint_every=100, **{"data.num_repeats": 3, "data.shuffle_caption": True,
                                 "data.keep_tokens": 1, "data.caption_tag_dropout_rate": 0.3}))
    result = train(cfg)
    # kohya: ceil(5 images × 3 repeats / batch 4) = 4 steps an epoch, 2 epochs
    assert result["status"] == "finished" and result["step"] == 8
    assert result["config"]["max_steps"] == 8
