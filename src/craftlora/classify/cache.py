"""Decode images once into one uint8 tensor, instead of decoding PNGs every epoch.

Every file goes through ``craftlora.data.imageio.load_rgb`` (the one safe loader); a file that
fails is reported with its path and reason and left out, the rest is cached. The cache can be
kept on disk as safetensors keyed by the images' content hashes and the size, so a second run
(another config, another seed, a resumed experiment) reads one file instead of decoding again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from craftlora.catalog.store import ImageRecord
from craftlora.data.imageio import BadImageError, load_rgb


@dataclass
class ImageCache:
    """uint8 images (N, 3, S, S) and the catalog id of each row."""

    size: int
    pixels: torch.Tensor
    ids: list[int]
    failed: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.row = {i: r for r, i in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, ids: Sequence[int]) -> torch.Tensor:
        """Row indices of the given ids (all must be cached)."""
        return torch.as_tensor([self.row[i] for i in ids], dtype=torch.long)

    def take(self, ids: Sequence[int]) -> torch.Tensor:
        return self.pixels[self.rows(ids)]


def decode_one(path: Path, size: int) -> np.ndarray:
    """One file → (3, size, size) uint8 via the safe loader, resized if needed."""
    im = load_rgb(path)
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


def _key(records: Sequence[ImageRecord], size: int) -> str:
    h = hashlib.sha256(str(size).encode())
    for r in records:
        h.update(f"{r.id}:{r.sha256};".encode())
    return h.hexdigest()[:20]


def build_cache(
    root: Path,
    records: Sequence[ImageRecord],
    size: int,
    *,
    cache_dir: Path | None = None,
    workers: int = 2,
    progress: bool = True,
) -> ImageCache:
    """Decode ``records`` (paths relative to ``root``) once; reuse ``cache_dir``'s copy if any."""
    records = list({r.id: r for r in records}.values())
    file = None
    if cache_dir is not None:
        file = Path(cache_dir) / f"images-{size}px-{_key(records, size)}.safetensors"
        if file.is_file():
            try:
                data = load_file(str(file))
                return ImageCache(size, data["pixels"], data["ids"].tolist())
            except Exception:  # a damaged cache file is rebuilt, never trusted
                file.unlink(missing_ok=True)

    def work(r: ImageRecord) -> np.ndarray | BadImageError:
        try:
            return decode_one(root / r.path, size)
        except BadImageError as e:
            return e

    arrays, ids, failed = [], [], []
    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = pool.map(work, records)
        for r, out in tqdm(zip(records, results, strict=True), total=len(records),
                           desc="decode images", disable=not progress, leave=False):
            if isinstance(out, BadImageError):
                failed.append({"id": str(r.id), "path": r.path, "reason": out.reason})
            else:
                arrays.append(out)
                ids.append(r.id)
    pixels = (torch.from_numpy(np.stack(arrays)) if arrays
              else torch.zeros(0, 3, size, size, dtype=torch.uint8))
    cache = ImageCache(size, pixels, ids, failed)
    if file is not None and not failed:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".tmp-{file.name}")
        save_file({"pixels": pixels.contiguous(), "ids": torch.tensor(ids, dtype=torch.long)},
                  str(tmp))
        os.replace(tmp, file)
    return cache
