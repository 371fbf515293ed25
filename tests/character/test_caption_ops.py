"""kohya caption handling: kept leading tags, shuffling, tag dropout, repeats × epochs."""

from __future__ import annotations

import pytest
import torch

from craftlora.train.caption_ops import kohya_steps, process_caption, split_tags

CAPTION = "pip, solo, standing, front view, full body, smile, green background"


def test_keep_tokens_stay_in_place_while_the_rest_shuffles():
    tags = split_tags(CAPTION)
    seen = set()
    for i in range(300):
        g = torch.Generator().manual_seed(i)
        out = split_tags(process_caption(CAPTION, keep_tokens=2, shuffle=True, generator=g))
        assert out[:2] == ["pip", "solo"]
        assert sorted(out) == sorted(tags)  # nothing lost or added without dropout
        seen.add(tuple(out[2:]))
    assert len(seen) > 100  # the other five tags really are shuffled (120 orders)


def test_tag_dropout_spares_kept_tags_and_drops_at_the_rate():
    dropped = 0
    for i in range(400):
        g = torch.Generator().manual_seed(i)
        out = split_tags(process_caption(CAPTION, keep_tokens=1, shuffle=True,
                                         tag_dropout=0.25, generator=g))
        assert out[0] == "pip"
        dropped += 7 - len(out)
    assert dropped / (400 * 6) == pytest.approx(0.25, abs=0.03)


def test_same_generator_seed_same_caption_and_off_means_unchanged():
    a = process_caption(CAPTION, keep_tokens=1, shuffle=True,
                        generator=torch.Generator().manual_seed(5))
    b = process_caption(CAPTION, keep_tokens=1, shuffle=True,
                        generator=torch.Generator().manual_seed(5))
    assert a == b
    assert process_caption(CAPTION, keep_tokens=1) == CAPTION


@pytest.mark.parametrize(("n", "repeats", "epochs", "batch", "accum", "procs", "steps"), [
    (48, 10, 10, 4, 1, 1, 1200),  # seed 004: 480 samples an epoch at batch 4
    (48, 10, 10, 1, 1, 1, 4800),
    (7, 3, 2, 4, 1, 1, 12),  # ceil(21 / 4) = 6 per epoch
    (48, 10, 10, 4, 2, 1, 600),
    (48, 10, 10, 4, 1, 2, 600),
    (5, 1, 3, 8, 1, 1, 3),  # one short batch per epoch
])
def test_kohya_step_count(n, repeats, epochs, batch, accum, procs, steps):
    assert kohya_steps(n, repeats, epochs, batch, grad_accum=accum, processes=procs) == steps


def test_kohya_steps_count_batches_within_each_bucket():
    # buckets of 3 and 5 images, 2 repeats, batch 4: ceil(6/4) + ceil(10/4) = 5 a epoch
    assert kohya_steps([3, 5], 2, 3, 4) == 15
    assert kohya_steps([8], 2, 3, 4) == kohya_steps(8, 2, 3, 4) == 12


def test_kohya_steps_refuses_zero():
    with pytest.raises(ValueError):
        kohya_steps(0, 10, 10, 4)
