"""Training throughput: the cached uint8 pipeline against a plain loop that decodes every epoch.

    .venv/bin/python -m bench.classify [--n 512] [--epochs 2] [--size 64]

Both pipelines train the same network (mobilenet_v3_small, random init) on the same mini-kiln
PNGs with the same batch size and augmentations of the study, in the same process. The cached
pipeline decodes once (timed, included) and augments whole batches on tensors; the baseline
decodes each PNG with the safe loader every epoch and augments per image with torchvision's
transforms, as a plain Dataset/DataLoader loop would. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms import v2

from craftlora.classify.augment import AugmentConfig, augment_batch
from craftlora.classify.cache import build_cache
from craftlora.classify.weights import MultiTaskLoss
from craftlora.data.imageio import load_rgb
from craftlora.mini.kiln import ATTRIBUTES
from craftlora.mini.render import render_kiln
from craftlora.models.classifier import IMAGENET_MEAN, IMAGENET_STD, build_classifier


class _Rec:  # the two fields build_cache reads from a catalog record
    def __init__(self, i: int, path: str):
        self.id, self.path, self.sha256 = i, path, str(i)


def _step(model, opt, loss_fn, x, y):
    loss, _ = loss_fn(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        render_kiln(root, n=a.n, seed=0, size=a.size)
        files = sorted(root.glob("*.png"))[: a.n]
        rows = [ln.split(",") for ln in (root / "labels.csv").read_text().splitlines()[1:]]
        lab = {r[0]: r[1:] for r in rows}
        tasks = {t: v for t, v in ATTRIBUTES.items()}
        y_all = {t: torch.tensor([tasks[t].index(lab[f.name][k]) for f in files])
                 for k, t in enumerate(tasks)}
        loss_fn = MultiTaskLoss({t: torch.ones(len(v)) for t, v in tasks.items()}, {})

        def fresh():
            torch.manual_seed(0)
            m = build_classifier("mobilenet_v3_small", tasks, "none", image_size=a.size).train()
            return m, torch.optim.AdamW(m.parameters(), lr=1e-3)

        # cached: decode once, augment batches on tensors
        model, opt = fresh()
        g = torch.Generator().manual_seed(0)
        t0 = time.perf_counter()
        cache = build_cache(root, [_Rec(i, f.name) for i, f in enumerate(files)], a.size,
                            progress=False)
        decode_s = time.perf_counter() - t0
        for _ in range(a.epochs):
            order = torch.randperm(len(files), generator=g)
            for i in range(0, len(order), a.batch):
                idx = order[i:i + a.batch]
                x = augment_batch(cache.pixels[idx], AugmentConfig(), g, IMAGENET_MEAN,
                                  IMAGENET_STD)
                _step(model, opt, loss_fn, x, {t: v[idx] for t, v in y_all.items()})
        cached_s = time.perf_counter() - t0

        # baseline: decode every PNG every epoch, per-image torchvision transforms
        tf = v2.Compose([
            v2.RandomResizedCrop(a.size, scale=(0.8, 1.0)), v2.RandomHorizontalFlip(),
            v2.RandomRotation(15), v2.ColorJitter(0.2, 0.2, 0.2, 0.1),
            v2.RandomAffine(0, translate=(0.1, 0.1)), v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ])
        model, opt = fresh()
        t0 = time.perf_counter()
        for _ in range(a.epochs):
            order = torch.randperm(len(files), generator=g)
            for i in range(0, len(order), a.batch):
                idx = order[i:i + a.batch]
                x = torch.stack([tf(load_rgb(files[j])) for j in idx.tolist()])
                _step(model, opt, loss_fn, x, {t: v[idx] for t, v in y_all.items()})
        plain_s = time.perf_counter() - t0

    seen = a.n * a.epochs
    out = {
        "bench": "classify training throughput",
        "images": a.n, "epochs": a.epochs, "size": a.size, "batch": a.batch,
        "network": "mobilenet_v3_small (random-init)", "threads": torch.get_num_threads(),
        "cached": {"seconds": cached_s, "decode_once_s": decode_s,
                   "images_per_s": seen / cached_s},
        "baseline_decode_every_epoch": {"seconds": plain_s, "images_per_s": seen / plain_s},
        "speedup": plain_s / cached_s,
        "note": "same process, same network and batch size; both include all decoding",
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
