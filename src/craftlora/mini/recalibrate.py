"""Batch-norm recalibration of the judge, then its held-out accuracy on fresh renders.

MobileNetV3 keeps BatchNorm running statistics with momentum 0.01: in a short from-scratch
run they trail the weights by hundreds of steps, so the network in eval mode reads images
with stale statistics and scores far below what it learned. Recomputing the statistics once
at the end (a cumulative average over fresh training renders in train mode, no gradients, no
weight change) is the standard fix. The held-out figures are then measured again on fresh
renders the judge never saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from craftlora.metrics.agreement import attribute_agreement
from craftlora.metrics.judge import Judge
from craftlora.mini.kiln import ATTRIBUTES, valid_combinations
from craftlora.mini.vessel import render_vessel
from craftlora.models.classifier import load_classifier, normalise, save_classifier, to_uint8_batch
from craftlora.models.roundtrip import roundtrip_images


def _renders(per_combo: int, seed: int, size: int) -> tuple[np.ndarray, list[dict[str, str]]]:
    arrays, labels = [], []
    for c_i, combo in enumerate(valid_combinations()):
        for k in range(per_combo):
            img, _ = render_vessel(combo, np.random.default_rng([seed, c_i, k]), size=size)
            arrays.append(np.ascontiguousarray(img))
            labels.append(dict(combo))
    return np.stack(arrays), labels


@torch.no_grad()
def recalibrate(path: Path, *, per_combo: int = 8, heldout_per_combo: int = 4,
                seed: int = 4321, batch: int = 128, decoder: Any = None) -> dict[str, Any]:
    """Recompute the judge's BN statistics in place; return its held-out accuracy after.

    ``decoder``: the VAE the judge was trained through; every other render then goes through
    it, as in training.
    """
    model, meta = load_classifier(path)
    size = int(model.image_size)
    x, _ = _renders(per_combo, seed, size)
    if decoder is not None:
        x[1::2] = np.stack(roundtrip_images(decoder, x[1::2]))
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over every batch below
    model.train()
    order = np.random.default_rng(seed).permutation(len(x))
    for i in range(0, len(x), batch):
        xb = normalise(to_uint8_batch(x[order[i:i + batch]], size), model.mean, model.std)
        model(xb)
    model.eval()
    for m in bns:
        m.momentum = 0.01
    hx, hl = _renders(heldout_per_combo, seed + 1, size)
    judge = Judge(path, model=model, meta=meta)
    preds = judge.predict(list(hx))
    agr = attribute_agreement(preds, hl, pairs=[("glaze", "type")])
    heldout = {
        "task_accuracy": {t: agr[t] for t in ATTRIBUTES},
        "combo_accuracy": agr["combo"],
        "glaze_type_accuracy": agr["glaze_type"],
        "images": len(hl),
    }
    meta = {**meta, "heldout_before_recalibration": meta.get("heldout"), "heldout": heldout,
            "bn_recalibrated_on": len(x)}
    save_classifier(path, model, meta)
    return heldout
