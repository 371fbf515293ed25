"""Training examples from the workspace catalog, and the on-disk latent / text caches.

A latent is cached under sha256(image bytes | resolution or bucket | crop | flip | specular |
VAE hash), so an edited image, a new resolution or bucket or another VAE never reads a stale
entry; the entry holds the image's SDXL size conditioning too. Text embeddings are
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
from craftlora.train.buckets import Size, cover_crop, sdxl_conditioning
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


def image_tensor(path: Path, data: DataSettings, flip: bool,
                 target: Size | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode, (optionally) reduce specular highlights, resize to cover ``target`` (w, h;
    default the square resolution), crop; [-1, 1]. Also the image's SDXL size conditioning."""
    from PIL import Image

    from craftlora.data.imageio import load_rgb

    im = load_rgb(path, max_pixels=data.max_pixels)
    if data.specular_alpha is not None:
        from craftlora.data.specular import SpecularConfig, reduce_specular

        im = reduce_specular(im, SpecularConfig(alpha=data.specular_alpha))
    target = target or (data.resolution, data.resolution)
    cond = sdxl_conditioning(im.size, target, data.center_crop, flip)
    (rw, rh), (left, top) = cover_crop(im.size, target, data.center_crop)
    im = im.resize((rw, rh), Image.Resampling.BICUBIC)
    im = im.crop((left, top, left + target[0], top + target[1]))
    if flip:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    a = torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1.0)
    return a.permute(2, 0, 1).contiguous(), cond


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


def latent_key(image_bytes_sha: str, data: DataSettings, flip: bool, vae_hash: str,
               target: Size | None = None) -> str:
    """The cache key; a bucket other than the square resolution enters it as ``WxH``."""
    square = target is None or target == (data.resolution, data.resolution)
    size = data.resolution if square else f"{target[0]}x{target[1]}"
    return _sha("latent-v1", image_bytes_sha, size, data.center_crop, flip,
                data.specular_alpha, vae_hash)


def encode_latents(
    examples: Sequence[Example], data: DataSettings, vae, vae_hash: str, cache: DiskCache | None,
    *, device: torch.device, batch: int = 16, progress: Callable[[int], None] | None = None,
    targets: Sequence[Size] | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], dict[str, int]]:
    """Per example: (mean, std) of the VAE posterior [F, C, h, w] (F flips) and the SDXL size
    conditioning [F, 6]. ``targets``: each example's bucket (w, h); default the square."""
    from craftlora.data.imageio import sha256_file

    flips = [False, True] if data.random_flip else [False]
    sizes = list(targets) if targets is not None else [None] * len(examples)
    keys = [[latent_key(sha256_file(e.path), data, f, vae_hash, t) for f in flips]
            for e, t in zip(examples, sizes, strict=True)]
    got: list[list[dict[str, torch.Tensor] | None]] = [[None] * len(flips) for _ in examples]
    todo: dict[Size | None, list[tuple[int, int]]] = {}
    hits = 0
    for i, ks in enumerate(keys):
        for j, k in enumerate(ks):
            entry = cache.get("latents", k) if cache else None
            if entry is None or "cond" not in entry:  # entries from before "cond" are redone
                todo.setdefault(sizes[i], []).append((i, j))
            else:
                got[i][j] = entry
                hits += 1
    for size, items in todo.items():  # one VAE batch holds one size
        for s in range(0, len(items), batch):
            chunk = items[s:s + batch]
            px, conds = zip(*(image_tensor(examples[i].path, data, flips[j], size)
                              for i, j in chunk), strict=True)
            with torch.no_grad():
                dist = vae.encode(torch.stack(px).to(device, vae.dtype)).latent_dist
            for (i, j), m, sd, c in zip(chunk, dist.mean.float().cpu(), dist.std.float().cpu(),
                                        conds, strict=True):
                got[i][j] = {"mean": m, "std": sd, "cond": c}
                if cache:
                    cache.put("latents", keys[i][j], got[i][j])
            if progress:
                progress(len(chunk))
    stacked = [{k: torch.stack([e[k] for e in row]) for k in ("mean", "std", "cond")}
               for row in got]  # type: ignore[index]
    return ([r["mean"] for r in stacked], [r["std"] for r in stacked],
            [r["cond"] for r in stacked],
            {"latent_hits": hits, "latent_encoded": sum(len(v) for v in todo.values())})


def text_key(caption: str, encoder_hash: str, clip_skip: int, weighted: bool = False) -> str:
    if weighted:
        return _sha("text-v1", caption, encoder_hash, clip_skip, "a1111")
    return _sha("text-v1", caption, encoder_hash, clip_skip)
