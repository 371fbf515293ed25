"""Tags for the kept images: structural tags from the prompt's attributes, plus an optional
tagger (a WD14-style ONNX model run with onnxruntime, or any callable image → tags), written
as kohya captions with the trigger first; tag frequencies and their chart.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from craftlora.catalog.workspace import Workspace
from craftlora.character.prompts import tags_of
from craftlora.data.imageio import load_rgb

Tagger = Callable[[np.ndarray], list[str]]
SOLO = "solo"


class TaggerError(RuntimeError):
    """The tagger cannot run (package missing, model or tag list unreadable)."""


class OnnxTagger:
    """A WD14-style tagger: an ONNX model taking NHWC BGR 0–255 float images and its tag list
    (``selected_tags.csv`` with a ``name`` column); tags scoring ≥ ``threshold`` are kept."""

    def __init__(self, model: str | Path, tags: str | Path, threshold: float = 0.35):
        try:
            import onnxruntime
        except ImportError:
            raise TaggerError("the ONNX tagger needs the 'onnxruntime' package, which is not "
                              "installed in this environment") from None
        try:
            self.session = onnxruntime.InferenceSession(str(model),
                                                        providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own error types
            raise TaggerError(f"{model}: not a loadable ONNX model ({e})") from None
        self.names = read_tag_list(tags)
        inp = self.session.get_inputs()[0]
        self.input, self.size = inp.name, int(inp.shape[1])
        self.threshold = threshold
        self.id = f"onnx:{Path(model).name}"

    def __call__(self, image: np.ndarray) -> list[str]:
        from PIL import Image

        im = Image.fromarray(np.asarray(image, np.uint8)).resize((self.size, self.size),
                                                               Image.Resampling.BICUBIC)
        x = np.asarray(im, np.float32)[None, :, :, ::-1].copy()
        scores = self.session.run(None, {self.input: x})[0][0]
        return [n for n, s in zip(self.names, scores, strict=False) if s >= self.threshold]


def read_tag_list(path: str | Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise TaggerError(f"{path}: unreadable tag list ({e})") from None
    if not rows or "name" not in rows[0]:
        raise TaggerError(f"{path}: a tag list needs a 'name' column")
    return [r["name"].replace("_", " ") for r in rows]


def image_tags(trigger: str, attributes: dict[str, str], read: Iterable[str] = ()) -> list[str]:
    """Trigger first, ``solo``, the prompt's tags, then what a tagger read; no repeats."""
    out = [trigger, SOLO, *tags_of(attributes), *read]
    return list(dict.fromkeys(t.strip() for t in out if t.strip()))


def tag_set(ws: Workspace, trigger: str, tagger: Tagger | None = None) -> dict[str, Any]:
    """Caption every training image (split train) with its tags; return the frequencies."""
    recs = ws.catalog.images(split="train", origin="synthetic")
    captions, freq = {}, Counter()
    for rec in recs:
        read = tagger(np.asarray(load_rgb(ws.resolve(rec.path)))) if tagger else []
        tags = image_tags(trigger, rec.attributes, read)
        captions[rec.id] = ", ".join(tags)
        freq.update(tags)
    ws.catalog.set_captions(captions)
    n = max(1, len(recs))
    return {"images": len(recs), "tags_per_image": sum(freq.values()) / n,
            "frequency": dict(freq.most_common()),
            "tagger": getattr(tagger, "id", type(tagger).__name__) if tagger else None}


def tag_chart(frequency: dict[str, int], path: Path) -> Path:
    """A horizontal bar chart of tag counts, most frequent on top (seed 004's figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(frequency)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(names) + 1))
    ax.barh(names, [frequency[n] for n in names], color="#6a3d9a")
    ax.set_xlabel("images")
    ax.set_title("tag frequency")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
