"""The judge: a trained multi-task classifier used as the ``domain`` feature network and as the
reader of attributes off generated images.

It is loaded with ``craftlora.models.classifier.load_classifier(path) -> (model, meta)``:
``model.features(x)`` gives the shared projection's input features, ``model(x)`` a dict
task → logits, and ``meta`` carries the label list per task and the input size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from craftlora.metrics.features import FeatureExtractor, register
from craftlora.metrics.images import Images, as_rgb_list
from craftlora.metrics.weights import MissingWeightsError, file_sha256

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _lookup(meta: Mapping[str, Any], *keys: str) -> Any:
    """The first of ``keys`` found in ``meta`` or in its nested ``config`` mapping."""
    for scope in (meta, meta.get("config") or {}):
        if isinstance(scope, Mapping):
            for k in keys:
                if k in scope and scope[k] is not None:
                    return scope[k]
    return None


class Judge(FeatureExtractor):
    """Domain features and attribute predictions from one judge checkpoint."""

    id = "domain"

    def __init__(self, checkpoint: str | os.PathLike[str], device: str = "cpu",
                 batch_size: int = 64, model: torch.nn.Module | None = None,
                 meta: Mapping[str, Any] | None = None):
        path = Path(checkpoint)
        if model is None:
            if not path.is_file():
                raise MissingWeightsError(f"domain: judge checkpoint {path} does not exist")
            from craftlora.models.classifier import load_classifier

            model, meta = load_classifier(path)
        self.model = model.eval().to(device)
        self.meta = dict(meta or {})
        self.path = path
        self.weights_sha256 = file_sha256(path)
        self.device, self.batch_size = device, batch_size
        labels = _lookup(self.meta, "labels", "label_lists", "tasks")
        if not isinstance(labels, Mapping) or not labels:
            raise MissingWeightsError(f"{path}: judge metadata has no label lists per task")
        self.labels: dict[str, list[str]] = {t: list(v) for t, v in labels.items()}
        size = _lookup(self.meta, "image_size", "input_size", "size")
        if size is None:
            raise MissingWeightsError(f"{path}: judge metadata has no input image size")
        self.size = int(size[0] if isinstance(size, (list, tuple)) else size)
        self.mean = tuple(_lookup(self.meta, "mean", "norm_mean") or IMAGENET_MEAN)
        self.std = tuple(_lookup(self.meta, "std", "norm_std") or IMAGENET_STD)
        with torch.no_grad():
            probe = torch.zeros(1, 3, self.size, self.size, device=device)
            self.dim = int(self.model.features(probe).reshape(1, -1).shape[1])

    def describe(self) -> dict[str, str]:
        return {"extractor": self.id, "weights_sha256": self.weights_sha256,
                "checkpoint": str(self.path)}

    def tensor(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """uint8 images → the judge's normalised input batch, resized the way the classifier
        package resizes at inference (``to_uint8_batch`` + ``normalise``)."""
        from craftlora.models.classifier import normalise, to_uint8_batch

        if len({a.shape for a in arrays}) == 1:
            x = to_uint8_batch(np.stack(arrays), self.size)
        else:
            x = to_uint8_batch([Image.fromarray(a) for a in arrays], self.size)
        return normalise(x, self.mean, self.std).to(self.device)

    @torch.no_grad()
    def _batch(self, arrays: list[np.ndarray]) -> np.ndarray:
        f = self.model.features(self.tensor(arrays))
        return f.reshape(f.shape[0], -1).cpu().numpy()

    @torch.no_grad()
    def read(self, images: Images) -> tuple[np.ndarray, list[dict[str, str]]]:
        """Features (N, D) and the predicted attribute values per image, in one pass."""
        arrays = as_rgb_list(images)
        feats: list[np.ndarray] = []
        preds: list[dict[str, str]] = []
        for i in range(0, len(arrays), self.batch_size):
            x = self.tensor(arrays[i:i + self.batch_size])
            f = self.model.features(x)
            feats.append(f.reshape(f.shape[0], -1).cpu().numpy())
            logits = self._heads(f) if hasattr(self.model, "heads") else self.model(x)
            idx = {t: logits[t].argmax(dim=1).cpu().numpy() for t in self.labels if t in logits}
            for j in range(x.shape[0]):
                preds.append({t: self.labels[t][int(v[j])] for t, v in idx.items()})
        if not feats:
            return np.zeros((0, self.dim)), []
        return np.concatenate(feats).astype(np.float64), preds

    def _heads(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        """MultiTaskClassifier's heads on already computed features (no second backbone pass)."""
        return {t: h(f) for t, h in zip(self.model.tasks, self.model.heads, strict=True)}

    def predict(self, images: Images) -> list[dict[str, str]]:
        """The attribute values the judge reads off each image."""
        return self.read(images)[1]


def _domain(checkpoint: str | os.PathLike[str] | None = None, **kw: Any) -> FeatureExtractor:
    if checkpoint is None:
        raise MissingWeightsError("domain: needs the judge classifier checkpoint (checkpoint=PATH)")
    return Judge(checkpoint, **kw)


register("domain", _domain)
