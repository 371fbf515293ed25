"""The mini world's outlines: (outline sketch, render, caption) triples and silhouettes of fresh
mini-kiln vessels, and the measure of the shipped outline ControlNet on them (contour F1).

A sketch is the outline of a vessel's exact silhouette (white strokes on black, the same form
``load_sketch`` gives a user's line drawing). ``measure_mini_controlnet`` generates from
held-out sketches with and without the ControlNet and reads each generated vessel's outline
with the shipped silhouette segmenter. The ControlNet's recipe is
``recipes/build_mini_controlnet.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from craftlora.data.captions import render_caption
from craftlora.generate.contour import evaluate_contour
from craftlora.generate.controlnet import MINI_CONTROLNET, load_controlnet
from craftlora.generate.silhouette import images_to_tensor, load_silhouette, vessel_outlines
from craftlora.metrics.contour import contour_adherence, tolerant_edge_f1
from craftlora.mini import kiln
from craftlora.mini.vessel import render_vessel
from craftlora.models.condition import SketchError, Triple, outline
from craftlora.models.loader import load_components
from craftlora.models.roundtrip import roundtrip_images

EVAL_SEED_OFFSET = 1_000_003  # held-out renders never share the training pool's seed
DEMO_SEED = 2_000_003  # the default of measure_mini_controlnet: neither training nor the card
SEGMENTER = "silhouette.safetensors"
CARD = "card.json"


def mini_outline_triples(n: int, seed: int = 0, size: int = 64) -> list[Triple]:
    """``n`` fresh mini-kiln renders over every valid combination in turn, with outlines."""
    cfg = kiln.workspace_config()
    combos = kiln.valid_combinations()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(combos))
    out: list[Triple] = []
    for i in range(n):
        combo = combos[int(order[i % len(combos)])]
        img, mask = render_vessel(combo, rng, size)
        out.append((outline(mask), img, render_caption(cfg, combo)))
    return out


def mini_masks(n: int, seed: int, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` fresh mini-kiln renders over the valid combinations and their exact silhouettes."""
    rng = np.random.default_rng(seed)
    combos = kiln.valid_combinations()
    xs, ys = [], []
    for _ in range(n):
        img, mask = render_vessel(combos[int(rng.integers(len(combos)))], rng, size)
        xs.append(img)
        ys.append(mask)
    x = images_to_tensor(xs)
    return x, torch.from_numpy(np.stack(ys)).float()[:, None]


def image_size(pipe: Any) -> int:
    """The pixel size a pipeline generates (latent size × the VAE's downsampling)."""
    scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    return int(pipe.unet.config.sample_size) * scale


def _training_seeds(controlnet_dir: Path | None) -> tuple[int, ...]:
    if controlnet_dir is None:
        return ()
    card = controlnet_dir.parent / CARD
    if not card.is_file():
        return ()
    seed = int(json.loads(card.read_text())["pool"]["seed"])
    return (seed, seed + 1)


def measure_mini_controlnet(
    base: Any = "mini",
    controlnet: Any = "mini",
    n: int = 16,
    seed: int = DEMO_SEED,
    *,
    steps: int = 20,
    cfg: float = 4.0,
    scale: float = 1.0,
    baseline: bool = True,
    segmenter: str | Path | None = None,
    batch_size: int = 16,
    forbidden_seeds: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Contour F1 of the outline ControlNet on ``n`` held-out sketches of fresh renders.

    ``base``: a ``StableDiffusionPipeline`` (e.g. the demo's, LoRA loaded) or a model source
    (``"mini"``, a diffusers folder). ``controlnet``: ``"mini"`` (the shipped one), a folder
    or a ``ControlNetModel``. ``seed`` seeds the held-out renders and the generation; it must
    not be the training pool's seed. Returns ``{"contour_f1", "n", "median", "quantiles",
    "share_at_least_0.8", "per_image", "canny_f1", "vae_ceiling_f1", "baseline": {...} or
    None, "wall_s", ...}``; ``vae_ceiling_f1`` scores the held-out renders themselves after a
    round trip through the base's VAE: no generation through that decoder can do better.
    """
    t0 = time.perf_counter()
    cn_dir: Path | None = None
    if isinstance(controlnet, str) and controlnet in ("mini", "mini-controlnet"):
        cn_dir = MINI_CONTROLNET / "controlnet"
    elif isinstance(controlnet, (str, Path)):
        cn_dir = Path(controlnet)
    if seed in (*forbidden_seeds, *_training_seeds(cn_dir)):
        raise ValueError(f"seed {seed} made the training renders; held-out sketches need another")
    if segmenter is None:
        segmenter = (cn_dir.parent if cn_dir is not None else MINI_CONTROLNET) / SEGMENTER
    seg_path = Path(segmenter)
    if not seg_path.is_file():
        raise SketchError(f"{seg_path}: outline segmenter not found")
    pipe = load_components(str(base)).pipeline() if isinstance(base, (str, Path)) else base
    cn = load_controlnet(cn_dir if cn_dir is not None else controlnet)
    net = load_silhouette(seg_path)
    held = mini_outline_triples(n, seed=seed, size=image_size(pipe))

    def outlines(images: list[Any]) -> list[np.ndarray]:
        return vessel_outlines(net, images)

    kw = dict(steps=steps, cfg=cfg, batch_size=batch_size, seed=seed)
    guided = evaluate_contour(
        pipe, cn, held, scale=scale, outline_fn=outlines, keep_images=True, **kw
    )
    canny = float(
        np.mean(
            [
                contour_adherence(t[0], im)["tolerant_f1"]
                for t, im in zip(held, guided.pop("images_made"), strict=True)
            ]
        )
    )
    res: dict[str, Any] = _summary(guided)
    rec = roundtrip_images(pipe.vae, [t[1] for t in held])
    vae_ceiling = float(
        np.mean([tolerant_edge_f1(o, t[0], 2) for o, t in zip(outlines(rec), held, strict=True)])
    )
    res.update(
        canny_f1=canny, vae_ceiling_f1=vae_ceiling, seed=seed, steps=steps, cfg=cfg,
        scale=scale, radius_px=2, segmenter=str(seg_path), baseline=None,
        controlnet=str(cn_dir) if cn_dir is not None else "in-memory",
    )
    if baseline:
        res["baseline"] = _summary(evaluate_contour(pipe, None, held, outline_fn=outlines, **kw))
    res["wall_s"] = round(time.perf_counter() - t0, 2)
    return res


def _summary(ev: dict[str, Any]) -> dict[str, Any]:
    return {
        "contour_f1": ev["tolerant_f1_mean"],
        "n": ev["images"],
        "median": ev["tolerant_f1_median"],
        "quantiles": ev["tolerant_f1_quantiles"],
        "share_at_least_0.8": ev["share_at_least_0.8"],
        "per_image": ev["tolerant_f1"],
        "edge_f1_mean": ev["edge_f1_mean"],
        "chamfer_mean": ev["chamfer_mean"],
    }
