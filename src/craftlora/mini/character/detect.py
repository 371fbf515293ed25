"""Detectors of the mascot's identity features and of the tags an image can show.

Pixels are classed by hue, saturation and value (so the colour shifts of a VAE round trip or
a generation still read), after removing the background colour (the median of the border).
The head is the largest skin-coloured component; each feature is read relative to it:
round head (its bounding box's corners empty), blue eyes (inside the head), red bow (above
and left of the head), purple outfit (below the head), stripes (light bands in the outfit's
lightness profile). On true renders the detectors are exact (tested). Readable tags: view
(eyes off the head's centre), framing (head size) and background colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from craftlora.mini.character.mascot import FEATURES

BACKGROUND_HUES = {"green": (80, 160), "teal": (160, 200), "orange": (15, 40),
                   "yellow": (40, 80)}


@dataclass(frozen=True)
class Head:
    cx: float
    cy: float
    r: float
    corners: float  # share of the bounding box's four corner squares the head fills
    aspect: float


@dataclass
class Classes:
    hue: np.ndarray  # degrees
    sat: np.ndarray
    val: np.ndarray
    background: np.ndarray  # bool: close to the border's colour

    def skin(self) -> np.ndarray:
        h = self.hue
        return ((h >= 340) | (h <= 50)) & (self.sat >= 0.08) & (self.sat <= 0.55) & \
            (self.val >= 0.7) & ~self.background

    def blue(self) -> np.ndarray:
        return (self.hue >= 190) & (self.hue <= 255) & (self.sat >= 0.3) & (self.val >= 0.3) \
            & ~self.background

    def red(self) -> np.ndarray:
        h = self.hue
        return ((h >= 340) | (h <= 35)) & (self.sat >= 0.55) & (self.val >= 0.35) & \
            ~self.background

    def purple(self) -> np.ndarray:
        return (self.hue >= 255) & (self.hue <= 340) & (self.sat >= 0.3) & \
            (self.val >= 0.4) & ~self.background


def classes(image: np.ndarray) -> Classes:
    a = np.ascontiguousarray(np.asarray(image, np.uint8)[..., :3])
    hsv = cv2.cvtColor(a, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]).astype(np.float32)
    bg = np.median(border, axis=0)
    near = np.linalg.norm(a.astype(np.float32) - bg, axis=-1) < 0.14 * 255
    return Classes(hsv[..., 0] * 360.0 / 256.0, hsv[..., 1] / 255.0, hsv[..., 2] / 255.0,
                   near)


def find_head(c: Classes) -> Head | None:
    """The largest skin component with what it encloses (eyes, mouth)."""
    comp, n = ndimage.label(c.skin())
    if n == 0:
        return None
    sizes = ndimage.sum(np.ones_like(comp), comp, index=np.arange(1, n + 1))
    k = int(np.argmax(sizes)) + 1
    if sizes[k - 1] < 12:
        return None
    blob = ndimage.binary_fill_holes(comp == k)
    ys, xs = np.nonzero(blob)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    h, w = y1 - y0, x1 - x0
    s = max(1, round(0.22 * min(h, w)))
    box = blob[y0:y1, x0:x1]
    corners = np.mean([box[:s, :s].mean(), box[:s, -s:].mean(), box[-s:, :s].mean(),
                       box[-s:, -s:].mean()])
    return Head(float(xs.mean()), float(ys.mean()), float(max(h, w)) / 2, float(corners),
                w / h)


def _stripes(c: Classes, head: Head) -> bool:
    """Two or more light bands down the middle of the outfit, between its first and last
    rows (lightness = value − saturation, so pale yellow stands out of purple)."""
    H, W = c.val.shape
    x0, x1 = int(max(0, head.cx - 0.6 * head.r)), int(min(W, head.cx + 0.6 * head.r + 1))
    y0 = int(head.cy + 0.9 * head.r)
    y1 = int(min(H, head.cy + 0.9 * head.r + 2.4 * head.r))
    if y1 - y0 < 4 or x1 - x0 < 2:
        return False
    rows = c.purple()[y0:y1, x0:x1].mean(axis=1) > 0.3
    light = c.val[y0:y1, x0:x1].mean(axis=1) - c.sat[y0:y1, x0:x1].mean(axis=1)
    outfit_rows = np.flatnonzero(rows)
    if len(outfit_rows) < 2:
        return False
    first, last = outfit_rows[0], outfit_rows[-1]
    bands, inside = 0, False
    for k in range(1, len(light) - 1):
        peak = light[k] >= light[k - 1] and light[k] >= light[k + 1]
        dark = np.concatenate([light[max(0, k - 4):k], light[k + 1:k + 5]])
        enclosed = first < k < last
        if peak and enclosed and light[k] - dark.min() > 0.12 and not inside:
            bands += 1
            inside = True
        elif not peak:
            inside = False
    return bands >= 2


def identity_features(image: np.ndarray) -> dict[str, bool]:
    """Which of the mascot's ``FEATURES`` the image shows."""
    c = classes(image)
    head = find_head(c)
    out = dict.fromkeys(FEATURES, False)
    if head is None:
        return out
    H, W = c.hue.shape
    yy, xx = np.mgrid[0:H, 0:W]
    r = head.r
    out["round head"] = bool(head.corners < 0.6 and 0.75 <= head.aspect <= 1.33)
    face = (xx - head.cx) ** 2 + (yy - head.cy) ** 2 <= (0.8 * r) ** 2
    out["blue eyes"] = int((c.blue() & face).sum()) >= 2
    upper_left = (xx < head.cx - 0.2 * r) & (xx >= head.cx - 1.5 * r) & \
        (yy < head.cy - 0.3 * r) & (yy >= head.cy - 1.6 * r)
    upper_right = (xx > head.cx + 0.2 * r) & (xx <= head.cx + 1.5 * r) & \
        (yy < head.cy - 0.3 * r) & (yy >= head.cy - 1.6 * r)
    red = c.red()
    out["red bow upper left"] = int((red & upper_left).sum()) >= 3 and \
        (red & upper_left).sum() > (red & upper_right).sum()
    below = (yy > head.cy + 0.8 * r) & (np.abs(xx - head.cx) <= 1.6 * r)
    out["purple outfit"] = int((c.purple() & below).sum()) >= max(6, int(0.15 * r * r))
    out["striped outfit"] = out["purple outfit"] and _stripes(c, head)
    return out


def read_tags(image: np.ndarray) -> dict[str, str | None]:
    """The view, framing and background colour the image shows (None when unreadable)."""
    c = classes(image)
    head = find_head(c)
    out: dict[str, str | None] = {"view": None, "framing": None, "background": None}
    a = np.asarray(image, np.uint8)[..., :3]
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    hsv = cv2.cvtColor(border[None].astype(np.uint8), cv2.COLOR_RGB2HSV_FULL)[0]
    hue, sat = np.median(hsv[:, 0]) * 360 / 256, np.median(hsv[:, 1]) / 255
    if sat < 0.15:
        out["background"] = "grey"
    else:
        out["background"] = next((k for k, (lo, hi) in BACKGROUND_HUES.items()
                                  if lo <= hue < hi), None)
    if head is None:
        return out
    size = 2 * head.r / c.hue.shape[0]
    out["framing"] = "full body" if size < 0.33 else "upper body" if size < 0.47 else "close-up"
    xx = np.mgrid[0:c.hue.shape[0], 0:c.hue.shape[1]][1]
    ys, xs = np.nonzero(c.blue() & (np.abs(xx - head.cx) <= head.r))
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
