"""Exact detectors of the mascot's identity features and of the tags an image can show.

Every pixel is labelled with its nearest ``PALETTE`` colour (or none when farther than a
tolerance); the head is the largest peach component, and each feature is read relative to it.
On true renders the detectors are exact (tested); on generations they read what is drawn.
Readable tags: view (eyes off the head's centre), framing (head size) and background colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from craftlora.mini.character.mascot import BACKGROUND_COLOURS, FEATURES, PALETTE

_NAMES = list(PALETTE)
_RGB = np.array([PALETTE[k] for k in _NAMES], np.float32)
TOLERANCE = 0.22


def labels(image: np.ndarray) -> np.ndarray:
    """Per pixel: index into ``_NAMES`` of the nearest palette colour, or -1."""
    a = np.asarray(image, np.float32)[..., :3] / 255.0
    d = np.linalg.norm(a[:, :, None, :] - _RGB[None, None], axis=-1)
    idx = d.argmin(-1)
    return np.where(d.min(-1) <= TOLERANCE, idx, -1)


def _mask(lab: np.ndarray, name: str) -> np.ndarray:
    return lab == _NAMES.index(name)


@dataclass(frozen=True)
class Head:
    cx: float
    cy: float
    r: float
    corners: float  # share of the bounding box's four corner squares the head fills
    aspect: float


def find_head(lab: np.ndarray) -> Head | None:
    """The largest peach component (the head; hands are much smaller)."""
    comp, n = ndimage.label(_mask(lab, "peach") | _mask(lab, "blue") | _mask(lab, "dark"))
    if n == 0:
        return None
    peach = _mask(lab, "peach")
    sizes = ndimage.sum(peach, comp, index=np.arange(1, n + 1))
    k = int(np.argmax(sizes)) + 1
    if sizes[k - 1] < 12:
        return None
    blob = ndimage.binary_fill_holes(comp == k)
    ys, xs = np.nonzero(blob)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    h, w = y1 - y0, x1 - x0
    c = max(1, round(0.22 * min(h, w)))
    box = blob[y0:y1, x0:x1]
    corners = np.mean([box[:c, :c].mean(), box[:c, -c:].mean(), box[-c:, :c].mean(),
                       box[-c:, -c:].mean()])
    return Head(float(xs.mean()), float(ys.mean()), float(max(h, w)) / 2, float(corners),
                w / h)


def identity_features(image: np.ndarray) -> dict[str, bool]:
    """Which of the mascot's ``FEATURES`` the image shows."""
    lab = labels(image)
    head = find_head(lab)
    out = dict.fromkeys(FEATURES, False)
    if head is None:
        return out
    H, W = lab.shape
    yy, xx = np.mgrid[0:H, 0:W]
    r = head.r
    out["round head"] = head.corners < 0.6 and 0.75 <= head.aspect <= 1.33
    in_head = (np.abs(xx - head.cx) <= r) & (np.abs(yy - head.cy) <= r)
    out["blue eyes"] = int((_mask(lab, "blue") & in_head).sum()) >= 2
    upper_left = (xx < head.cx - 0.2 * r) & (xx >= head.cx - 1.5 * r) & \
        (yy < head.cy - 0.3 * r) & (yy >= head.cy - 1.6 * r)
    out["red bow upper left"] = int((_mask(lab, "red") & upper_left).sum()) >= 3
    below = (yy > head.cy + 0.8 * r) & (np.abs(xx - head.cx) <= 1.6 * r)
    purple = _mask(lab, "purple") & below
    out["purple outfit"] = int(purple.sum()) >= max(6, int(0.15 * r * r))
    stripe = _mask(lab, "stripe") & below
    up = np.zeros_like(purple)
    down = np.zeros_like(purple)
    for k in range(1, 4):
        up[k:] |= purple[:-k]
        down[:-k] |= purple[k:]
    out["striped outfit"] = int((stripe & up & down).sum()) >= 3
    return out


def read_tags(image: np.ndarray) -> dict[str, str | None]:
    """The view, framing and background colour the image shows (None when unreadable)."""
    lab = labels(image)
    head = find_head(lab)
    out: dict[str, str | None] = {"view": None, "framing": None, "background": None}
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    counts = {c: int((border == _NAMES.index(c)).sum()) for c in BACKGROUND_COLOURS}
    best = max(counts, key=lambda c: counts[c])
    if counts[best] >= len(border) // 4:
        out["background"] = best
    if head is None:
        return out
    size = 2 * head.r / lab.shape[0]
    out["framing"] = "full body" if size < 0.33 else "upper body" if size < 0.47 else "close-up"
    ys, xs = np.nonzero(_mask(lab, "blue") & (np.abs(np.mgrid[0:lab.shape[0], 0:lab.shape[1]][1]
                                                          - head.cx) <= head.r))
    if len(xs) >= 2:
        off = (xs.mean() - head.cx) / head.r
        out["view"] = "front view" if abs(off) < 0.18 else "from left" if off < 0 else "from right"
    return out


def tag_matches(image: np.ndarray, tags: list[str]) -> tuple[int, int]:
    """(readable tags of ``tags`` the image shows, readable tags in ``tags``)."""
    got = read_tags(image)
    hit = total = 0
    for t in tags:
        if t.endswith("background"):
            total += 1
            hit += got["background"] is not None and got["background"] in t.split()
        elif t in ("full body", "upper body", "close-up"):
            total += 1
            hit += got["framing"] == t
        elif t in ("front view", "from left", "from right"):
            total += 1
            hit += got["view"] == t
    return hit, total
