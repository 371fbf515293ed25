"""Caption handling as kohya sd-scripts does it: tag shuffling behind kept leading tags, tag
dropout, and the step count that repeats × epochs give.

A caption is comma-separated tags. The first ``keep_tokens`` tags (the trigger first) stay in
place; with ``shuffle_caption`` the rest are shuffled, then each of them is dropped with
probability ``tag_dropout``. Draws come from the caller's generator, so a step's caption is
fixed by (seed, step, slot) and a resumed run sees the same captions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

SEPARATOR = ","


def split_tags(caption: str) -> list[str]:
    return [t.strip() for t in caption.split(SEPARATOR) if t.strip()]


def process_caption(caption: str, *, keep_tokens: int = 0, shuffle: bool = False,
                    tag_dropout: float = 0.0, generator: torch.Generator | None = None) -> str:
    """The caption a training step sees (unchanged when neither shuffling nor dropout is on)."""
    if not shuffle and tag_dropout <= 0:
        return caption
    tags = split_tags(caption)
    fixed, rest = tags[:keep_tokens], tags[keep_tokens:]
    if shuffle and len(rest) > 1:
        order = torch.randperm(len(rest), generator=generator).tolist()
        rest = [rest[i] for i in order]
    if tag_dropout > 0 and rest:
        keep = torch.rand(len(rest), generator=generator) >= tag_dropout
        rest = [t for t, k in zip(rest, keep.tolist(), strict=True) if k]
    return ", ".join(fixed + rest)


def kohya_steps(images: int | Sequence[int], repeats: int, epochs: int, batch_size: int, *,
                grad_accum: int = 1, processes: int = 1) -> int:
    """Optimiser steps of ``epochs`` epochs as sd-scripts counts them: an epoch is every image
    ``repeats`` times, in batches of ``batch_size`` within each bucket (``images``: one count,
    or the image count of every bucket; a bucket's last batch may be short), split over
    ``processes`` and grouped by ``grad_accum``. 48 images × 10 repeats, batch 4, 10 epochs
    = 1,200 steps."""
    sizes = [images] if isinstance(images, int) else list(images)
    if min([*sizes, repeats, epochs, batch_size, grad_accum, processes], default=0) < 1:
        raise ValueError("images, repeats, epochs, batch size, accumulation and processes "
                         "must all be at least 1")
    batches = sum(math.ceil(n * repeats / batch_size) for n in sizes)
    return epochs * math.ceil(batches / processes / grad_accum)
