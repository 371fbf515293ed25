"""The ControlNet condition format, shared by ControlNet training and sketch-guided generation.

A condition is an HxWx3 uint8 image made from a bool stroke map: ``outline`` (white strokes on
black in every channel, the scribble / lineart convention) or ``outline+fill`` (strokes in red
and blue, strokes plus the regions they enclose in green). A trained ControlNet records its
kind in ``CONDITION_FILE`` beside its ``config.json``.
"""

from __future__ import annotations

import cv2
import numpy as np

CONDITIONS = ("outline", "outline+fill")
CONDITION_FILE = "craftlora_condition.json"  # beside a ControlNet's config.json
Triple = tuple[np.ndarray, np.ndarray, str]  # (sketch bool HxW, image uint8 HxWx3, caption)


class SketchError(ValueError):
    """A sketch or ControlNet cannot be used; the message names the file and the fault."""


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """The boundary pixels of a bool silhouette (mask minus its erosion)."""
    m = mask.astype(np.uint8)
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    return (m - cv2.erode(m, kernel)) > 0


def filled(edges: np.ndarray) -> np.ndarray:
    """The strokes plus every region they enclose (free pixels not 4-connected to the border)."""
    free = (~edges).astype(np.uint8)
    n, labels = cv2.connectedComponents(free, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, border[border > 0]) & free.astype(bool)
    return ~outside


def condition_array(edges: np.ndarray, condition: str = "outline") -> np.ndarray:
    """The ControlNet condition (HxWx3 uint8) of a bool stroke map."""
    if condition not in CONDITIONS:
        raise SketchError(f"ControlNet condition must be one of {CONDITIONS}, not {condition!r}")
    e = np.where(edges, 255, 0).astype(np.uint8)
    if condition == "outline":
        return np.stack([e, e, e], -1)
    return np.stack([e, np.where(filled(edges), 255, 0).astype(np.uint8), e], -1)
