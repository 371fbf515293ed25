"""Calibration of the mini-kiln world: is every attribute learnable, but not trivially?

Renders a train set and a fresh test set from the default law in memory, then reports per
attribute (accuracy and F1-macro on the test set):
  - majority: always the most common value (the floor);
  - best_single_pixel: logistic regression on the RGB of one pixel, best of a 16×16 grid of
    positions (how far one pixel gets: the nuisance factors should keep this low);
  - linear_pixels: logistic regression on all pixels at 32×32;
  - tiny_cnn: a small multi-task CNN trained for a fixed time budget on CPU;
plus the confusion counts of the study's pairs for the CNN.
Run: .venv/bin/python -m bench.mini_learnability [--train 3000 --test 1000 --cnn-seconds 150]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from craftlora.mini.kiln import ATTRIBUTES, default_counts
from craftlora.mini.vessel import render_vessel

PAIRS = {
    "glaze": [("white", "ivory white"), ("moon white", "celadon")],
    "type": [("tea bowl", "dish"), ("pot", "vase")],
}


def render_set(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    plan = [c for c, k in default_counts(n) for _ in range(k)]
    imgs = np.stack([render_vessel(c, np.random.default_rng([seed, 99, i]))[0]
                     for i, c in enumerate(plan)])
    labels = np.array([[ATTRIBUTES[a].index(c[a]) for a in ATTRIBUTES] for c in plan])
    return imgs, labels


def _scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"accuracy": round(float(accuracy_score(y, p)), 3),
            "f1_macro": round(float(f1_score(y, p, average="macro")), 3)}


def linear_baselines(xtr, ytr, xte, yte) -> dict[str, dict]:
    out: dict[str, dict] = {}
    small_tr = xtr.reshape(-1, 32, 2, 32, 2, 3).mean((2, 4)).reshape(len(xtr), -1) / 255.0
    small_te = xte.reshape(-1, 32, 2, 32, 2, 3).mean((2, 4)).reshape(len(xte), -1) / 255.0
    mu, sd = small_tr.mean(0), small_tr.std(0) + 1e-6
    for k, attr in enumerate(ATTRIBUTES):
        maj = np.bincount(ytr[:, k]).argmax()
        best = {"accuracy": 0.0, "f1_macro": 0.0}
        for r in range(2, 64, 4):
            for c in range(2, 64, 4):
                f_tr, f_te = xtr[:, r, c] / 255.0, xte[:, r, c] / 255.0
                m = LogisticRegression(max_iter=300).fit(f_tr, ytr[:, k])
                s = _scores(yte[:, k], m.predict(f_te))
                if s["accuracy"] > best["accuracy"]:
                    best = {**s, "pixel": [r, c]}
        lin = LogisticRegression(max_iter=300, C=0.05).fit((small_tr - mu) / sd, ytr[:, k])
        out[attr] = {
            "majority": _scores(yte[:, k], np.full(len(yte), maj)),
            "best_single_pixel": best,
            "linear_pixels": _scores(yte[:, k], lin.predict((small_te - mu) / sd)),
        }
    return out


def tiny_cnn(xtr, ytr, xte, yte, seconds: float) -> tuple[dict, dict, int]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(2)
    heads = [len(v) for v in ATTRIBUTES.values()]

    def block(i: int, o: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                             nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                             nn.MaxPool2d(2))

    body = nn.Sequential(block(3, 32), block(32, 64), block(64, 96), block(96, 128),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2))
    outs = nn.ModuleList([nn.Linear(128, h) for h in heads])
    params = list(body.parameters()) + list(outs.parameters())
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4)
    xt = torch.tensor(xtr).permute(0, 3, 1, 2).float() / 255.0
    yt = torch.tensor(ytr)
    t0, epochs = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        body.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            b = perm[i : i + 64]
            xb = xt[b]
            if np.random.rand() < 0.5:
                xb = xb.flip(3)
            feats = body(xb)
            loss = sum(nn.functional.cross_entropy(h(feats), yt[b, k])
                       for k, h in enumerate(outs))
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs += 1
    body.eval()
    with torch.no_grad():
        xe = torch.tensor(xte).permute(0, 3, 1, 2).float() / 255.0
        feats = torch.cat([body(xe[i : i + 256]) for i in range(0, len(xe), 256)])
        preds = [h(feats).argmax(1).numpy() for h in outs]
    scores = {a: _scores(yte[:, k], preds[k]) for k, a in enumerate(ATTRIBUTES)}
    conf: dict[str, dict[str, int]] = {}
    for attr, pairs in PAIRS.items():
        k = list(ATTRIBUTES).index(attr)
        vals = ATTRIBUTES[attr]
        for a, b in pairs:
            ia, ib = vals.index(a), vals.index(b)
            conf[f"{a} -> {b}"] = int(((yte[:, k] == ia) & (preds[k] == ib)).sum())
            conf[f"{b} -> {a}"] = int(((yte[:, k] == ib) & (preds[k] == ia)).sum())
            conf[f"{a} (n)"] = int((yte[:, k] == ia).sum())
            conf[f"{b} (n)"] = int((yte[:, k] == ib).sum())
    return scores, conf, epochs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--cnn-seconds", type=float, default=150.0)
    ap.add_argument("--skip-linear", action="store_true")
    args = ap.parse_args()
    xtr, ytr = render_set(args.train, 0)
    xte, yte = render_set(args.test, 1)
    result: dict = {"bench": "mini_learnability", "train": len(xtr), "test": len(xte)}
    if not args.skip_linear:
        result["linear"] = linear_baselines(xtr, ytr, xte, yte)
    scores, conf, epochs = tiny_cnn(xtr, ytr, xte, yte, args.cnn_seconds)
    result["tiny_cnn"] = {"seconds": args.cnn_seconds, "epochs": epochs, "scores": scores,
                          "confusions": conf}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
