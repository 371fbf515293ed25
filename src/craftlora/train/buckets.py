"""Aspect-ratio buckets, as kohya sd-scripts users know them.

With ``[data] buckets = true`` every image is trained at the bucket size nearest its aspect
ratio instead of a square crop. The buckets are every (w, h) with sides from
``min_bucket_reso`` to ``max_bucket_reso`` in steps of ``bucket_reso_steps`` and the largest
height (for that width, a multiple of the step) whose area stays within ``resolution²``, plus
the square ``resolution × resolution`` rounded down to the step. An image goes to the bucket
whose w/h is nearest its own (ties: the first in (w, h) order), is resized to cover it and
cropped (centre, or top-left with ``center_crop = false``).

``bucket_no_upscale = true`` (kohya's option): an image is never enlarged; its bucket is its own
size rounded down to the step, after scaling it down to ``resolution²`` area if larger.

A batch is drawn from one bucket (``steps.BucketOrder``). Each image's SDXL size conditioning
(original size, crop top-left, target size) is computed here and cached with its latent.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image

from craftlora.train.config import DataSettings

Size = tuple[int, int]  # (width, height)
_SWAPS = {5, 6, 7, 8}  # EXIF orientations that turn the image by 90°


def bucket_resolutions(resolution: int, min_reso: int, max_reso: int, step: int) -> list[Size]:
    """The bucket sizes (w, h) for ``resolution²`` area, sorted."""
    area = resolution * resolution
    side = resolution // step * step
    out = {(side, side)}
    for w in range(min_reso, max_reso + 1, step):
        h = min(max_reso, area // w // step * step)
        if h >= min_reso:
            out |= {(w, h), (h, w)}
    return sorted(out)


def image_size(path: Path) -> Size:
    """(width, height) as the decoded, EXIF-turned image will have it (header only)."""
    with Image.open(path) as im:
        w, h = im.size
        orientation = im.getexif().get(0x0112)
    return (h, w) if orientation in _SWAPS else (w, h)


def assign_bucket(size: Size, buckets: list[Size], data: DataSettings) -> Size:
    """The bucket of an image of ``size`` (see the module notes)."""
    w, h = size
    step = data.bucket_reso_steps
    if data.bucket_no_upscale:
        s = min(1.0, math.sqrt(data.resolution ** 2 / (w * h)))
        return max(step, int(w * s) // step * step), max(step, int(h * s) // step * step)
    ar = w / h
    return min(buckets, key=lambda b: abs(b[0] / b[1] - ar))


def cover_crop(size: Size, target: Size, center: bool) -> tuple[Size, Size]:
    """Resize ``size`` to cover ``target`` (short side first, as the square path does):
    ((resized w, h), (left, top) of the crop)."""
    (w, h), (tw, th) = size, target
    s = max(tw / w, th / h)
    rw, rh = max(tw, round(w * s)), max(th, round(h * s))
    return (rw, rh), (((rw - tw) // 2, (rh - th) // 2) if center else (0, 0))


def sdxl_conditioning(size: Size, target: Size, center: bool, flip: bool) -> torch.Tensor:
    """SDXL's (original h, w, crop top, crop left, target h, w) for one image; a flipped image
    has its crop measured from the mirrored side."""
    (rw, _), (left, top) = cover_crop(size, target, center)
    if flip:
        left = rw - left - target[0]
    return torch.tensor([size[1], size[0], top, left, target[1], target[0]], dtype=torch.float32)


def assign_buckets(examples, data: DataSettings) -> list[Size]:
    """The bucket (w, h) of every example (``examples``: objects with a ``path``)."""
    buckets = bucket_resolutions(data.resolution, data.min_bucket_reso, data.max_bucket_reso,
                                 data.bucket_reso_steps)
    return [assign_bucket(image_size(e.path), buckets, data) for e in examples]


def bucket_info(bucket_of: list[Size], sizes: list[Size]) -> dict:
    """The buckets used with their counts (kohya's ``ss_bucket_info`` shape) and the mean
    aspect-ratio error between each image (w, h) and its bucket."""
    counts: dict[Size, int] = {}
    for b in bucket_of:
        counts[b] = counts.get(b, 0) + 1
    err = [abs(b[0] / b[1] - w / h) for b, (w, h) in zip(bucket_of, sizes, strict=True)]
    return {"buckets": {str(i): {"resolution": list(b), "count": counts[b]}
                        for i, b in enumerate(sorted(counts))},
            "mean_img_ar_error": sum(err) / len(err) if err else 0.0}


def original_size(cond: torch.Tensor) -> Size:
    """(w, h) of the image behind SDXL conditioning rows [F, 6]."""
    return int(cond[0, 1]), int(cond[0, 0])


def plan_buckets(examples, data: DataSettings) -> dict:
    """What ``buckets = true`` would make of ``examples``: the candidate list, the buckets used
    with their counts, and the images that would be enlarged (none with no-upscale)."""
    sizes = [image_size(e.path) for e in examples]
    candidates = bucket_resolutions(data.resolution, data.min_bucket_reso, data.max_bucket_reso,
                                    data.bucket_reso_steps)
    bucket_of = [assign_bucket(s, candidates, data) for s in sizes]
    enlarged = [str(e.path) for e, s, b in zip(examples, sizes, bucket_of, strict=True)
                if max(b[0] / s[0], b[1] / s[1]) > 1]
    return {"candidates": [list(c) for c in candidates], **bucket_info(bucket_of, sizes),
            "n_images": len(examples), "enlarged": enlarged}
