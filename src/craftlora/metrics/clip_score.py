"""CLIP score: how well an image matches its text, as torchmetrics defines it.

``score = max(0, 100 · cos(E_img(image), E_txt(text)))`` with transformers' ``CLIPModel``
projected embeddings, averaged over (image, text) pairs. The model is a local folder
(``config.json``, ``model.safetensors``, the tokenizer and ``preprocessor_config.json``): the one
registered with ``craftlora weights add clip DIR``, or an explicit path. Nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

from craftlora.metrics.images import Images, as_rgb_list
from craftlora.metrics.weights import MissingWeightsError, registered, weights_fingerprint


class ClipScorer:
    """Text–image CLIP score from a local transformers CLIP folder."""

    def __init__(self, folder: str | os.PathLike[str] | None = None, device: str = "cpu",
                 batch_size: int = 32):
        path = Path(folder) if folder is not None else registered("clip", what="CLIP score")
        if not (path / "config.json").is_file():
            raise MissingWeightsError(f"CLIP score: {path} is not a CLIP model folder "
                                      "(no config.json)")
        try:
            self.model = CLIPModel.from_pretrained(path, local_files_only=True,
                                                   use_safetensors=True).eval().to(device)
            self.tokenizer = CLIPTokenizer.from_pretrained(path, local_files_only=True)
            self.processor = CLIPImageProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as e:
            raise MissingWeightsError(f"CLIP score: {path} does not load as a CLIP model "
                                      f"folder: {str(e).splitlines()[0]}") from e
        self.path, self.device, self.batch_size = path, device, batch_size
        self.id = f"clip-score:{path.name}"
        self.weights_sha256 = weights_fingerprint(path)

    def describe(self) -> dict[str, str]:
        return {"clip_model": str(self.path), "clip_weights_sha256": self.weights_sha256}

    @torch.no_grad()
    def _embed(self, arrays: list[np.ndarray], texts: list[str]) -> tuple[torch.Tensor, ...]:
        m = self.model
        arrays = [a if a.flags.writeable else a.copy() for a in arrays]
        pix = self.processor(images=arrays, return_tensors="pt")["pixel_values"]
        img = m.visual_projection(m.vision_model(pixel_values=pix.to(self.device)).pooler_output)
        max_len = int(m.config.text_config.max_position_embeddings)
        ids = self.tokenizer(texts, padding=True, truncation=True, max_length=max_len,
                             return_tensors="pt")
        txt = m.text_projection(m.text_model(**ids.to(self.device)).pooler_output)
        return (torch.nn.functional.normalize(img.float(), dim=-1),
                torch.nn.functional.normalize(txt.float(), dim=-1))

    def scores(self, images: Images, texts: Sequence[str]) -> np.ndarray:
        """One score per (image, text) pair, in [0, 100]."""
        arrays = as_rgb_list(images)
        if len(arrays) != len(texts):
            raise ValueError(f"CLIP score needs one text per image: {len(arrays)} images, "
                             f"{len(texts)} texts")
        out = []
        for i in range(0, len(arrays), self.batch_size):
            img, txt = self._embed(arrays[i:i + self.batch_size],
                                   list(texts[i:i + self.batch_size]))
            out.append((100.0 * (img * txt).sum(-1)).clamp(min=0).cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def score(self, images: Images, texts: Sequence[str]) -> dict[str, Any]:
        """The mean over pairs, with N and the model that produced it."""
        s = self.scores(images, texts)
        return {"clip_score": float(s.mean()) if len(s) else None, "n": int(len(s)),
                **self.describe()}


def record_text(record: Any) -> str | None:
    """The text an image was made from (``prompt_text`` of generated images, without LoRA
    tags), else its caption; None when it has neither."""
    prov = record.provenance or {}
    return prov.get("prompt_text") or prov.get("prompt") or record.caption or None


def set_clip_score(ws: Any, spec: str, scorer: ClipScorer, *, limit: int | None = None,
                   seed: int = 0) -> dict[str, Any]:
    """The mean CLIP score of a catalog set against each image's own prompt or caption;
    images with no text or that do not decode are listed under ``skipped``."""
    from craftlora.metrics.sets import SetError, load_images, select

    recs = select(ws, spec, limit=limit, seed=seed)
    with_text = [r for r in recs if record_text(r)]
    skipped = [f"{r.path}: no prompt or caption" for r in recs if not record_text(r)]
    ok, arrays, errors = load_images(ws, with_text)
    if not ok:
        raise SetError(f"set {spec!r}: no image with a prompt or caption decodes")
    result = scorer.score(arrays, [record_text(r) for r in ok])
    return {"set": spec, **result, "skipped": skipped + errors}
