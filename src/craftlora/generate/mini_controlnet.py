"""Build and measure the mini world's outline ControlNet in one call.

1. render a pool of mini-kiln vessels; sketch = the outline of each exact silhouette;
2. train a ControlNet from the base UNet on (sketch, image, caption) triples;
3. train the silhouette segmenter that reads a generated vessel's outline;
4. on held-out fresh renders (another seed), generate from each outline sketch and report
   tolerant contour F1 at 2 px between the sketch and the generated vessel's outline, with the
   segmenter's own ceiling on the true renders and the Canny-based figure beside it.

Everything goes to ``out_dir``: the ControlNet (diffusers folder, safetensors), the segmenter
(``silhouette.safetensors``) and ``card.json`` with every figure and the wall time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from craftlora.data.atomic import atomic_write_json
from craftlora.generate.controlnet import load_controlnet
from craftlora.generate.controlnet_train import (
    ControlNetTrainConfig,
    evaluate_contour,
    mini_outline_triples,
    train_controlnet,
)
from craftlora.generate.silhouette import (
    mini_masks,
    save_silhouette,
    train_silhouette,
    vessel_outlines,
)
from craftlora.metrics.contour import tolerant_edge_f1

EVAL_SEED_OFFSET = 1_000_003  # held-out renders never share the training pool's seed


def build_mini_controlnet(
    pipe: Any,
    out_dir: str | Path,
    *,
    pool: int = 2000,
    config: ControlNetTrainConfig | None = None,
    silhouette_images: int = 3000,
    silhouette_steps: int = 700,
    eval_images: int = 64,
    eval_steps: int = 20,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, save and evaluate the outline ControlNet for ``pipe`` (a mini-kiln base)."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    size = int(pipe.unet.config.sample_size) * scale
    cfg = config or ControlNetTrainConfig(seed=seed)
    triples = mini_outline_triples(pool, seed=seed, size=size)
    train = train_controlnet(pipe, triples, out / "controlnet", cfg, progress=progress)
    x, y = mini_masks(silhouette_images, seed=seed + 1, size=size)
    net, sil = train_silhouette(x, y, steps=silhouette_steps, seed=seed)
    save_silhouette(net, out / "silhouette.safetensors", sil)
    held = mini_outline_triples(eval_images, seed=seed + EVAL_SEED_OFFSET, size=size)
    ceiling = [
        tolerant_edge_f1(p, t[0], 2)
        for p, t in zip(vessel_outlines(net, [t[1] for t in held]), held, strict=True)
    ]
    cn = load_controlnet(out / "controlnet")
    guided = evaluate_contour(
        pipe,
        cn,
        held,
        steps=eval_steps,
        seed=seed,
        outline_fn=lambda ims: vessel_outlines(net, ims),
    )
    canny = evaluate_contour(pipe, cn, held, steps=eval_steps, seed=seed)
    card = {
        "image_size": size,
        "pool": pool,
        "train": train,
        "silhouette": {**sil, "true_render_outline_f1": float(np.mean(ceiling))},
        "contour_f1": guided["tolerant_f1_mean"],
        "eval": {"silhouette_outline": guided, "canny": canny, "held_out_images": eval_images},
        "protocol": (
            "tolerant edge F1 at 2 px between each held-out outline sketch and the outline of "
            "the generated vessel's silhouette (segmenter); Canny figures beside it"
        ),
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    atomic_write_json(out / "card.json", card)
    return card
