"""Contour F1 of the shipped tiny outline ControlNet (the demo's sketch-guidance figure).

If the bundled ControlNet (``craftlora/mini/controlnet``: a diffusers ``controlnet/`` folder
and the ``silhouette.safetensors`` segmenter) is present, it generates from held-out
outline sketches of fresh renders and measures tolerant contour F1 at 2 px. If it is absent,
the figure is ``None`` with the reason; nothing is made up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MINI_CONTROLNET = Path(__file__).resolve().parent / "controlnet"
HELD_OUT_SEED = 2_000_003  # neither the training pool's seed nor the card's evaluation seed


def find_controlnet(folder: Path = MINI_CONTROLNET) -> tuple[Path, Path] | str:
    """(controlnet folder, segmenter file), or the reason they cannot be used."""
    cn = folder / "controlnet"
    seg = folder / "silhouette.safetensors"
    if not (cn / "config.json").is_file():
        return (f"no tiny ControlNet shipped: {cn} is missing (issue 7 item 3; build it with "
                "`python recipes/build_mini_controlnet.py --work WORK --out "
                "src/craftlora/mini/controlnet`)")
    if not seg.is_file():
        return f"the ControlNet at {cn} has no outline segmenter {seg}"
    return cn, seg


def measure_controlnet(model: str, n: int, *, sampler: str, steps: int, cfg: float
                       ) -> dict[str, Any]:
    """Contour F1 on ``n`` held-out outline sketches through ``model``, or None + reason."""
    found = find_controlnet()
    if isinstance(found, str):
        return {"contour_f1": None, "reason": found}
    cn_dir, seg_file = found
    from craftlora.generate.contour import evaluate_contour
    from craftlora.generate.controlnet import SketchError, load_controlnet
    from craftlora.generate.runner import pipeline_module_hash
    from craftlora.generate.silhouette import load_silhouette, vessel_outlines
    from craftlora.mini.outlines import mini_outline_triples
    from craftlora.models.loader import ModelSourceError, load_components

    try:
        pipe = load_components(model).pipeline()
        cn = load_controlnet(cn_dir)
        net = load_silhouette(seg_file)
    except (ModelSourceError, SketchError, OSError, ValueError) as e:
        return {"contour_f1": None, "reason": f"the shipped ControlNet could not be loaded: {e}"}
    keys = ("block_out_channels", "cross_attention_dim", "in_channels")
    if any(tuple(_c(cn, k)) != tuple(_c(pipe.unet, k)) for k in keys):
        return {"contour_f1": None,
                "reason": f"the shipped ControlNet at {cn_dir} was trained for another base "
                          f"model than {model!r} ({', '.join(keys)} differ)"}
    size = int(pipe.unet.config.sample_size) * 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    held = mini_outline_triples(n, seed=HELD_OUT_SEED, size=size)
    try:
        res = evaluate_contour(pipe, cn, held, steps=steps, cfg=cfg, sampler=sampler,
                               outline_fn=lambda ims: vessel_outlines(net, ims))
    except RuntimeError as e:
        return {"contour_f1": None, "reason": f"the shipped ControlNet failed on {model!r}: {e}"}
    return {"contour_f1": res["tolerant_f1_mean"], "held_out_sketches": len(held),
            "radius_px": res["radius"], "eval": res, "controlnet": str(cn_dir),
            "controlnet_sha256": pipeline_module_hash(cn)}


def _c(module: Any, key: str) -> list[Any]:
    v = module.config.get(key) if hasattr(module.config, "get") else getattr(module.config, key)
    return list(v) if isinstance(v, list | tuple) else [v]
