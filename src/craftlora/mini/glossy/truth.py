"""Score specular-highlight reduction against the glossy world's exact truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from craftlora.data.specular import (
    SpecularConfig,
    mask_iou,
    reduce_specular,
    restore_error,
    soft_iou,
    specular_mask,
)


def is_glossy_world(folder: Path) -> bool:
    return (Path(folder) / "truth" / "mask").is_dir() and (Path(folder) / "images").is_dir()


def _read(path: Path, mode: str) -> np.ndarray:
    with Image.open(path, formats=["PNG"]) as im:
        return np.asarray(im.convert(mode))


def score_image(glossy: np.ndarray, clean: np.ndarray, truth: np.ndarray,
                cfg: SpecularConfig) -> dict[str, float | None]:
    """One image: mask IoU, and the error to the clean render before and after reduction
    (everywhere, and inside the true highlights)."""
    inside = truth >= 0.5
    restored = reduce_specular(glossy, cfg)
    m = specular_mask(glossy, cfg)
    return {"mask_iou": mask_iou(m, truth), "mask_soft_iou": soft_iou(m, truth),
            "restore_error": restore_error(restored, clean),
            "glossy_error": restore_error(glossy, clean),
            "restore_error_highlights": restore_error(restored, clean, inside),
            "glossy_error_highlights": restore_error(glossy, clean, inside)}


def score_world(folder: Path, cfg: SpecularConfig | None = None, limit: int | None = None
                ) -> dict[str, Any]:
    """Mean figures over the world's images (the first ``limit``); a missing or unreadable
    truth file is reported and skipped."""
    cfg = cfg or SpecularConfig()
    folder = Path(folder)
    names = sorted(p.name for p in (folder / "images").glob("*.png"))[:limit]
    rows, skipped = [], []
    for name in names:
        try:
            glossy = _read(folder / "images" / name, "RGB")
            clean = _read(folder / "truth" / "clean" / name, "RGB")
            truth = _read(folder / "truth" / "mask" / name, "L").astype(np.float32) / 255.0
        except (OSError, ValueError) as e:
            skipped.append(f"{name}: {e}")
            continue
        rows.append(score_image(glossy, clean, truth, cfg))
    keys = rows[0].keys() if rows else []
    mean = {k: float(np.mean([r[k] for r in rows if r[k] is not None])) for k in keys}
    return {**mean, "images": len(rows), "skipped": skipped, "config": cfg.model_dump(),
            "iou_threshold": 0.5}
