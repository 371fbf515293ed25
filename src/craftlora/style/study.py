"""Stage functions of the style study: discover blocks, train one method, score its outputs.

Methods (all on the same one-shot pair, settings of ``train_style``):

| name | LoRA trained on | style blocks (θ_e, loaded at inference) | stage 2 |
|---|---|---|---|
| ``contrastive`` | design (θ_a) + embroidery (θ_e) | the discovered k | yes |
| ``no-stage2`` | same | the discovered k | no |
| ``all-blocks`` | same | every transformer block | yes |
| ``random-blocks`` | same | k random blocks (seeded) | yes |
| ``two-block`` (B-LoRA-like) | embroidery only | the 2 most style-like blocks | no |
| ``whole`` (DreamBooth-LoRA-like) | embroidery only | every block | no |
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from craftlora.models.loader import load_components
from craftlora.style.blocks import (
    SDXL_STYLE_BLOCKS,
    block_similarity,
    rank_blocks,
    transformer_blocks,
    write_chart,
)
from craftlora.style.metrics import StyleClassifier, hfrd, hist_distance, mask_iou
from craftlora.style.stylize import load_style_lora, stylize
from craftlora.train.style_mode import META_NAME, StyleSettings, image_latents, train_style

METHODS = ("contrastive", "whole", "two-block", "no-stage2", "all-blocks", "random-blocks")


def discover_blocks(comp, pairs: Sequence[tuple[np.ndarray, np.ndarray, str]], *, k: int,
                    steps: int = 10, segments: int = 5) -> dict:
    """Mean block similarity over (embroidery, design, caption) pairs; the k least similar.
    An SDXL UNet gets the paper's four blocks without inversion."""
    if comp.is_sdxl:
        return {"blocks": list(SDXL_STYLE_BLOCKS), "similarity": {}, "source": "paper (SDXL)"}
    from craftlora.models.text import encode_prompts

    sims: dict[str, dict] = {}
    for emb, des, caption in pairs:
        with torch.no_grad():
            cond = encode_prompts(comp, [caption])["hidden"]
        one = block_similarity(comp.unet, dict(comp.noise_scheduler.config),
                               image_latents(comp, [emb]), image_latents(comp, [des]), cond,
                               steps=steps, segments=segments)
        for b, v in one.items():
            acc = sims.setdefault(b, {"mean": 0.0, "segments": [0.0] * len(v["segments"])})
            acc["mean"] += v["mean"] / len(pairs)
            acc["segments"] = [a + s / len(pairs) for a, s in zip(acc["segments"], v["segments"],
                                                                  strict=True)]
    return {"blocks": rank_blocks(sims, k), "similarity": sims,
            "source": f"DDIM inversion, {steps} steps, {segments} segments, {len(pairs)} pair(s)"}


def write_blocks(result: dict, out: Path, title: str) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    (out / "blocks.json").write_text(json.dumps(result, indent=1))
    if result["similarity"]:
        write_chart(result["similarity"], result["blocks"], out / "blocks.png", title)
    return result


def method_settings(method: str, base: StyleSettings, found: Sequence[str],
                    every: Sequence[str]) -> StyleSettings:
    k = len(found)
    if method == "contrastive":
        return replace(base, style_blocks=list(found), method=method)
    if method == "no-stage2":
        return replace(base, style_blocks=list(found), stage2_steps=0, method=method)
    if method == "all-blocks":
        return replace(base, style_blocks=list(every), method=method)
    if method == "random-blocks":
        pick = random.Random(base.seed).sample(list(every), k)
        return replace(base, style_blocks=pick, method=method)
    if method == "two-block":
        return replace(base, style_blocks=list(found[:2]), stage2_steps=0, design_update=False,
                       method=method)
    if method == "whole":
        return replace(base, style_blocks=list(every), stage2_steps=0, design_update=False,
                       method=method)
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


def train_method(model: str, s: StyleSettings, emb, design, caption, expansions, out: Path
                 ) -> Path:
    comp = load_components(model)
    return train_style(comp, emb, design, caption, expansions, s, out)


def stylize_with(model: str, lora: Path, designs, prompts, **kw) -> list[np.ndarray]:
    """Fresh base + only the style blocks named in the run's metadata, then img2img."""
    meta = json.loads((lora.parent / META_NAME).read_text())
    comp = load_components(model)
    load_style_lora(comp.unet, lora, meta["style_blocks"])
    comp.unet.eval()
    return stylize(comp, designs, prompts, **kw)


def score(outputs, designs, masks, reference, style: str, clf: StyleClassifier, lpips) -> dict:
    """Per-output figures for one (method, style), averaged."""
    pred = clf.predict(outputs)
    return {
        "hfrd": float(np.mean([hfrd(o, reference) for o in outputs])),
        "lpips_content": float(np.mean(lpips.distance(outputs, designs))),
        "hist": float(np.mean([hist_distance(o, d) for o, d in zip(outputs, designs,
                                                                    strict=True)])),
        "style_agreement": float(np.mean([p == style for p in pred])),
        "mask_iou": float(np.mean([mask_iou(o, d, m) for o, d, m in zip(outputs, designs, masks,
                                                                         strict=True)])),
    }


def every_block(model: str) -> list[str]:
    return transformer_blocks(load_components(model).unet)
