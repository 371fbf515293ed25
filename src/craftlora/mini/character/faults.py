"""Faults a text-to-image generator adds to character candidates (seed 004's limitations):
a watermark / text overlay and a shape distortion (a wavy warp)."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw

WORDS = ("AI gen", "(c) img", "sample", "preview", "stock")


def watermark(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Text stamped in a corner in white or black (the overlay a hosted generator adds)."""
    im = Image.fromarray(np.asarray(image, np.uint8))
    draw = ImageDraw.Draw(im)
    text = WORDS[int(rng.integers(len(WORDS)))]
    w, h = im.size
    x = int(rng.integers(1, max(2, w // 3)))
    y = h - 12 if rng.uniform() < 0.6 else 1
    fill = (255, 255, 255) if rng.uniform() < 0.7 else (0, 0, 0)
    draw.text((x, y), text, fill=fill)
    return np.asarray(im)


def distort(image: np.ndarray, rng: np.random.Generator, amplitude: float = 2.0) -> np.ndarray:
    """A wavy warp of the whole frame (bent outlines, the 'shape distortion' of the seed)."""
    a = np.asarray(image, np.uint8)
    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(14.0, 22.0)
    ph = rng.uniform(0, 2 * np.pi, size=2)
    mx = xx + amplitude * np.sin(yy / period * 2 * np.pi + ph[0])
    my = yy + amplitude * np.sin(xx / period * 2 * np.pi + ph[1])
    return cv2.remap(a, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)
