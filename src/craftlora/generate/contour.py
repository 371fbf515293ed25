"""Contour adherence of a ControlNet: generate from held-out (sketch, image, caption) triples
and score each image's edges against its sketch (tolerant F1 at 2 px, pixel F1, Chamfer)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from craftlora.generate.controlnet import CONTOUR_RADIUS, controlnet_pipeline
from craftlora.generate.samplers import set_sampler
from craftlora.metrics.contour import chamfer, contour_adherence, edge_f1, tolerant_edge_f1
from craftlora.models.condition import Triple, condition_array
from craftlora.models.text import diffusers_clip_skip, prompt_embeds


@torch.no_grad()
def evaluate_contour(
    pipe: Any,
    controlnet: Any,
    triples: Sequence[Triple],
    *,
    steps: int = 20,
    cfg: float = 7.0,
    sampler: str = "DPM++ 2M Karras",
    clip_skip: int = 2,
    scale: float = 1.0,
    batch_size: int = 16,
    seed: int = 0,
    outline_fn: Callable[[list[Any]], list[np.ndarray]] | None = None,
    keep_images: bool = False,
) -> dict[str, Any]:
    """Generate from held-out (sketch, caption) pairs; tolerant contour F1 at 2 px per image.

    ``controlnet=None`` generates the same prompts and seeds without guidance (the baseline).
    The generated image's edges are Canny's (the ControlNet++ protocol) unless ``outline_fn``
    gives each image's object outline (e.g. ``silhouette.vessel_outlines`` for mini-kiln).
    """
    if controlnet is None:
        runner = pipe
        pipe.set_progress_bar_config(disable=True)
    else:
        runner = controlnet_pipeline(pipe, controlnet)
    old_scheduler = pipe.scheduler
    set_sampler(runner, sampler)
    skip = diffusers_clip_skip(clip_skip)
    scores: list[dict[str, Any]] = []
    made: list[Any] = []
    try:
        for s in range(0, len(triples), batch_size):
            chunk = triples[s : s + batch_size]
            h, w = chunk[0][0].shape
            kw: dict[str, Any] = {}
            if controlnet is not None:
                kind = getattr(controlnet, "craftlora_condition", "outline")
                kw["image"] = [Image.fromarray(condition_array(t[0], kind)) for t in chunk]
                kw["controlnet_conditioning_scale"] = scale
            images = runner(  # captions encoded as the ControlNet trainer reads them
                **prompt_embeds(pipe, [t[2] for t in chunk], [""] * len(chunk), skip,
                                weighted=False),
                num_inference_steps=steps,
                guidance_scale=cfg,
                generator=[torch.Generator().manual_seed(seed + s + i) for i in range(len(chunk))],
                width=w,
                height=h,
                **kw,
            ).images
            if keep_images:
                made.extend(images)
            if outline_fn is None:
                for t, img in zip(chunk, images, strict=True):
                    scores.append(contour_adherence(t[0], img, radius=CONTOUR_RADIUS))
            else:
                for t, edges in zip(chunk, outline_fn(images), strict=True):
                    scores.append(
                        {
                            "tolerant_f1": tolerant_edge_f1(edges, t[0], CONTOUR_RADIUS),
                            "edge_f1": edge_f1(edges, t[0]),
                            "chamfer": chamfer(edges, t[0]),
                        }
                    )
    finally:
        pipe.scheduler = old_scheduler
    f1 = np.array([x["tolerant_f1"] for x in scores])
    out = {
        "images": len(scores),
        "tolerant_f1_mean": float(f1.mean()),
        "tolerant_f1_median": float(np.median(f1)),
        "tolerant_f1_quantiles": {
            name: float(np.quantile(f1, q))
            for name, q in (("min", 0), ("p10", 0.1), ("p25", 0.25), ("p75", 0.75), ("max", 1))
        },
        "share_at_least_0.8": float((f1 >= 0.8).mean()),
        "tolerant_f1": [round(float(x), 4) for x in f1],
        "edge_f1_mean": float(np.mean([x["edge_f1"] for x in scores])),
        "chamfer_mean": float(np.mean([x["chamfer"] for x in scores])),
        "radius": CONTOUR_RADIUS,
        "edges": "canny(100,200)" if outline_fn is None else "outline_fn",
        "guided": controlnet is not None,
        "scale": scale if controlnet is not None else 0.0,
    }
    if keep_images:
        out["images_made"] = made
    return out
