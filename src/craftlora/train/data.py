"""Training examples from the workspace catalog, and the on-disk latent / text caches.

A latent is cached under sha256(image bytes | resolution | crop | flip | specular | VAE hash), so
an edited image, a new resolution or another VAE never reads a stale entry. Text embeddings are
cached under sha256(caption | text-encoder hash | clip skip). The cache stores the VAE's
posterior (mean, std); each step samples from it with the step's own generator, exactly as an
uncached run would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save

from craftlora.data.atomic import atomic_write_bytes
from craftlora.train.config import DataSettings


class TrainDataError(ValueError):
    """The training data is unusable; the message names the files."""


@dataclass(frozen=True)
class Example:
    image_id: int
    path: Path
    caption: str


def collect_examples(data: DataSettings) -> tuple[list[Example], dict]:
    """The catalog's images for this run with their captions.

    The caption is the catalog's caption, else the workspace template filled with the image's
    attributes. Images with neither fail the run, every such file named.
    """
    from craftlora.catalog.workspace import Workspace
    from craftlora.data.captions import render_caption

    with Workspace.open(data.workspace) as ws:
        records = ws.catalog.images(split=data.split, origin=data.origin, set_name=data.set_name)
        missing, examples = [], []
        for rec in records:
            caption = rec.caption
            if not caption and rec.attributes:
                try:
                    caption = render_caption(ws.config, rec.attributes)
                except Exception as e:  # a template field the image lacks
                    missing.append(f"{rec.path} ({e})")
                    continue
            if not caption:
                missing.append(f"{rec.path} (no caption and no attributes)")
                continue
            examples.append(Example(rec.id, ws.resolve(rec.path), caption))
    if missing:
        shown = "\n  ".join(missing[:50])
        more = f"\n  … and {len(missing) - 50} more" if len(missing) > 50 else ""
        raise TrainDataError(
            f"{len(missing)} training image(s) have no caption; caption them "
            f"(`craftlora captions`) or give them attributes:\n  {shown}{more}"
        )
    if not examples:
        raise TrainDataError(
            f"{data.workspace}: no images with split={data.split!r}, origin={data.origin!r}"
            + (f", set={data.set_name!r}" if data.set_name else "")
        )
    return examples, {"n_images": len(examples)}


def _sha(*parts: object) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(str(p).encode())
        h.update(b"\x00")
    return h.hexdigest()


def image_tensor(path: Path, data: DataSettings, flip: bool) -> torch.Tensor:
    """Decode, (optionally) reduce specular highlights, resize the short side, crop; [-1, 1]."""
    from PIL import Image

    from craftlora.data.imageio import load_rgb

    im = load_rgb(path, max_pixels=data.max_pixels)
    if data.specular_alpha is not None:
        from craftlora.data.specular import SpecularConfig, reduce_specular

        im = reduce_specular(im, SpecularConfig(alpha=data.specular_alpha))
    r = data.resolution
    w, h = im.size
    s = r / min(w, h)
    im = im.resize((max(r, round(w * s)), max(r, round(h * s))), Image.Resampling.BICUBIC)
    w, h = im.size
    if data.center_crop:
        left, top = (w - r) // 2, (h - r) // 2
    else:
        left, top = 0, 0
    im = im.crop((left, top, left + r, top + r))
    if flip:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    a = torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1.0)
    return a.permute(2, 0, 1).contiguous()


class DiskCache:
    """``<dir>/<kind>/<key[:2]>/<key>.safetensors``, written atomically."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / f"{key}.safetensors"

    def get(self, kind: str, key: str) -> dict[str, torch.Tensor] | None:
        p = self.path(kind, key)
        if not p.is_file():
            return None
        try:
            out = load_file(str(p))
        except Exception:  # a damaged entry is recomputed, never trusted
            return None
        if any(not torch.isfinite(v).all() for v in out.values()):
            return None
        return out

    def put(self, kind: str, key: str, tensors: dict[str, torch.Tensor]) -> None:
        data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
        atomic_write_bytes(self.path(kind, key), data)


def latent_key(image_bytes_sha: str, data: DataSettings, flip: bool, vae_hash: str) -> str:
    return _sha("latent-v1", image_bytes_sha, data.resolution, data.center_crop, flip,
                data.specular_alpha, vae_hash)


def encode_latents(
    examples: Sequence[Example], data: DataSettings, vae, vae_hash: str, cache: DiskCache | None,
    *, device: torch.device, batch: int = 16, progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """(mean, std) of the VAE posterior for every example × flip, shape [N, F, C, h, w]."""
    from craftlora.data.imageio import sha256_file

    flips = [False, True] if data.random_flip else [False]
    keys = [[latent_key(sha256_file(e.path), data, f, vae_hash) for f in flips] for e in examples]
    means: list[list[torch.Tensor | None]] = [[None] * len(flips) for _ in examples]
    stds: list[list[torch.Tensor | None]] = [[None] * len(flips) for _ in examples]
    todo: list[tuple[int, int]] = []
    hits = 0
    for i, ks in enumerate(keys):
        for j, k in enumerate(ks):
            got = cache.get("latents", k) if cache else None
            if got is None:
                todo.append((i, j))
            else:
                means[i][j], stds[i][j] = got["mean"], got["std"]
                hits += 1
    for s in range(0, len(todo), batch):
        chunk = todo[s:s + batch]
        px = torch.stack([image_tensor(examples[i].path, data, flips[j]) for i, j in chunk])
        with torch.no_grad():
            dist = vae.encode(px.to(device, vae.dtype)).latent_dist
        for (i, j), m, sd in zip(chunk, dist.mean.float().cpu(), dist.std.float().cpu(),
                                 strict=True):
            means[i][j], stds[i][j] = m, sd
            if cache:
                cache.put("latents", keys[i][j], {"mean": m, "std": sd})
        if progress:
            progress(len(chunk))
    mean = torch.stack([torch.stack(m) for m in means])  # type: ignore[arg-type]
    std = torch.stack([torch.stack(s) for s in stds])  # type: ignore[arg-type]
    return mean, std, {"latent_hits": hits, "latent_encoded": len(todo)}


def text_key(caption: str, encoder_hash: str, clip_skip: int) -> str:
    return _sha("text-v1", caption, encoder_hash, clip_skip)
