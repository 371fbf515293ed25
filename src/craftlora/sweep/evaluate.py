"""Evaluate trained runs with ``craftlora compare``: for each seed and each set of generation
settings, one compare of the base and every variant's LoRA on the same prompts and seeds.

Per (variant, seed) figures: FD (the judge's feature space, or a named generic one), attribute
agreement (exact combination, with a judge), LPIPS diversity among the images of one prompt,
and the highlight area (the share of pixels the specular mask calls highlight).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from craftlora.data.atomic import atomic_write_json
from craftlora.data.specular import highlight_area
from craftlora.generate.compare import CompareSettings, compare
from craftlora.metrics.diversity import lpips_diversity
from craftlora.metrics.features import get_extractor
from craftlora.sweep.config import EvaluateSettings
from craftlora.sweep.expand import Variant

METRICS = ("fd", "agreement", "lpips_diversity", "highlight_area")
#: lower is better for these
LOWER_IS_BETTER = ("fd", "highlight_area")


def _group_key(gen: dict[str, Any]) -> str:
    return "g-" + hashlib.sha256(json.dumps(gen, sort_keys=True).encode()).hexdigest()[:8]


def _row(v: Variant) -> str:
    """The variant's row in its compare: ``lora-<name>`` (a variant may be named ``base``,
    which in a compare is the model without a LoRA)."""
    return f"lora-{v.name}"


def image_figures(folder: Path, prompts: list[dict[str, Any]], lpips: Any
                  ) -> dict[str, float | None]:
    """LPIPS diversity (images grouped by prompt) and mean highlight area of one row."""
    images = [np.asarray(Image.open(folder / f"{p['i']:05d}.png").convert("RGB"))
              for p in prompts]
    groups: dict[str, list[np.ndarray]] = defaultdict(list)
    for p, im in zip(prompts, images, strict=True):
        groups[p["prompt"]].append(im)
    multi = [g for g in groups.values() if len(g) > 1]
    return {"lpips_diversity": lpips_diversity(multi, lpips) if multi else None,
            "highlight_area": float(np.mean([highlight_area(im) for im in images]))}


def evaluate_all(model: str, ws: Path, variants: list[Variant], seeds: list[int],
                 loras: dict[tuple[str, int], str], ev: EvaluateSettings, size: int, out: Path,
                 workers: int = 1, progress: bool = True) -> dict[str, Any]:
    """``figures[variant][seed][metric]`` plus what produced them (feature space, LPIPS net)."""
    lpips = get_extractor(ev.lpips, **({"weights": ev.lpips_weights} if ev.lpips_weights else {}))
    figures: dict[str, dict[int, dict[str, float | None]]] = {v.name: {} for v in variants}
    folders: dict[str, dict[int, str]] = {v.name: {} for v in variants}
    about: dict[str, Any] = {"lpips_network": lpips.id}
    for s in seeds:
        groups: dict[str, list[Variant]] = defaultdict(list)
        for v in variants:
            groups[_group_key(v.generation(ev))].append(v)
        for key, vs in groups.items():
            gen = vs[0].generation(ev)
            cs = CompareSettings(model=model, loras={_row(v): loras[(v.train_key, s)] for v in vs},
                                 weight=gen["weight"], prompts=ev.prompts,
                                 prompt_seed=ev.prompt_seed, sampler=gen["sampler"],
                                 steps=gen["steps"], cfg=gen["cfg"], batch_size=ev.batch_size,
                                 size=size)
            folder = Path(out) / "eval" / f"seed-{s}" / key
            done = folder / "sweep_figures.json"
            if not done.is_file():
                res = compare(ws, folder, cs, ev.judge, workers=workers, progress=progress,
                              features=ev.features)
                prompts = json.loads((folder / "prompts.json").read_text(encoding="utf-8"))
                rows = {v.name: {"fd": res[_row(v)]["fd"],
                                 "agreement": res[_row(v)].get("combo_agreement"),
                                 **image_figures(folder / _row(v), prompts, lpips)}
                        for v in vs}
                atomic_write_json(done, {"rows": rows, "feature_space": res["feature_space"]})
            rec = json.loads(done.read_text(encoding="utf-8"))
            about["feature_space"] = rec["feature_space"]
            for v in vs:
                figures[v.name][s] = rec["rows"][v.name]
                folders[v.name][s] = str(folder / _row(v))
    return {"figures": figures, "folders": folders, **about}
