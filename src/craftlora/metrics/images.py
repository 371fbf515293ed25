"""Image batches as the metrics see them: uint8 RGB arrays, HxWx3."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

ImageLike = Image.Image | np.ndarray
Images = Sequence[ImageLike] | np.ndarray


def as_rgb_array(img: ImageLike) -> np.ndarray:
    """One image as a contiguous uint8 (H, W, 3) array; grey is repeated to three channels."""
    if isinstance(img, Image.Image):
        if img.mode != "RGB":
            img = img.convert("RGB")
        return np.asarray(img, dtype=np.uint8)
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise TypeError(f"image arrays must be uint8, got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"expected an HxWx3 image array, got shape {a.shape}")
    return np.ascontiguousarray(a[:, :, :3])


def as_rgb_list(images: Images) -> list[np.ndarray]:
    """A list of uint8 (H, W, 3) arrays from PIL images, arrays, or one NHWC uint8 array."""
    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ValueError(f"expected an NHWC uint8 array, got shape {images.shape}")
        return [as_rgb_array(x) for x in images]
    return [as_rgb_array(x) for x in images]


def resize_float(img: np.ndarray, size: tuple[int, int], *, resample: int = Image.BICUBIC
                 ) -> np.ndarray:
    """Resize each channel as float32 with PIL (clean-fid's "clean" resize; no quantisation).

    ``size`` is (width, height); returns float32 (H, W, C) on the input's 0..255 scale.
    """
    h, w = img.shape[:2]
    if (w, h) == tuple(size):
        return img.astype(np.float32)
    chans = [
        np.asarray(Image.fromarray(img[:, :, c].astype(np.float32)).resize(size, resample=resample))
        for c in range(img.shape[2])
    ]
    return np.stack(chans, axis=2).astype(np.float32)
