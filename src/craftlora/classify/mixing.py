"""Training sets = the real train split + a share of a synthetic set.

A synthetic set is any catalog set whose images have origin ``synthetic``. Only its images that
passed QC count when QC results exist (an image passes when it has QC rows and every one passed;
the catalog's ``qc_results`` table is read directly). A synthetic image is never taken for
validation or test: those come only from real images in ``val`` / ``test``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from craftlora.catalog.store import Catalog, ImageRecord


class MixingError(ValueError):
    """A mix that cannot be built as asked; the message names the set and the numbers."""


@dataclass
class Splits:
    train: list[ImageRecord]
    val: list[ImageRecord]
    test: list[ImageRecord]


def real_splits(catalog: Catalog) -> Splits:
    """The real train / val / test images; refuses a catalog with synthetic images in val/test."""
    out = Splits(
        train=catalog.images(split="train", origin="real"),
        val=catalog.images(split="val", origin="real"),
        test=catalog.images(split="test", origin="real"),
    )
    for split in ("val", "test"):
        bad = [r.id for r in catalog.images(split=split) if r.origin != "real"]
        if bad:
            raise MixingError(f"synthetic images {bad[:5]} are in the {split} split")
    if not out.train:
        raise MixingError(f"{catalog.path}: no real images in the train split; run "
                          "`craftlora split` first")
    return out


def qc_passed(catalog: Catalog, records: list[ImageRecord]) -> tuple[list[ImageRecord], str]:
    """(records that passed QC, a note); every record when no QC results exist for the set."""
    results = catalog.qc_results([r.id for r in records])
    if not results:
        return list(records), "no QC results: all images used"
    kept = [r for r in records if r.id in results and all(q.passed for q in results[r.id])]
    return kept, f"QC: {len(kept)} of {len(records)} passed"


def synthetic_pool(catalog: Catalog, set_name: str, *, require_qc: bool = True,
                   require_review: bool = False) -> tuple[list[ImageRecord], str]:
    """The usable images of a synthetic set (origin synthetic, not val/test, QC-passed; with
    ``require_review``, only images whose newest review decision is accept)."""
    records = catalog.images(set_name=set_name)
    if not records:
        raise MixingError(f"{catalog.path}: no images in set {set_name!r} "
                          f"(sets: {sorted(catalog.sets())})")
    wrong_origin = [r.id for r in records if r.origin != "synthetic"]
    if wrong_origin:
        raise MixingError(f"set {set_name!r} holds real images (ids {wrong_origin[:5]}); "
                          "only a synthetic set can be mixed in")
    records = [r for r in records if r.split in (None, "train")]
    records, note = qc_passed(catalog, records) if require_qc else (records, "QC not required")
    if require_review:
        records, review_note = review_accepted(catalog, records)
        note = f"{note}; {review_note}"
    return records, note


def review_accepted(catalog: Catalog, records: list[ImageRecord]
                    ) -> tuple[list[ImageRecord], str]:
    """(records a reviewer accepted, a note): the newest decision per image must be accept."""
    latest = catalog.latest_reviews()
    kept = [r for r in records if latest.get(r.id) == "accept"]
    reviewed = sum(r.id in latest for r in records)
    return kept, f"review: {len(kept)} accepted of {len(records)} ({reviewed} reviewed)"


def synthetic_count(n_real: int, ratio: float | None, count: int | None) -> int:
    """How many synthetic images make ``ratio`` of the final set (or exactly ``count``)."""
    if (ratio is None) == (count is None):
        raise MixingError("give exactly one of ratio or count")
    if count is not None:
        return int(count)
    if not 0.0 <= ratio < 1.0:  # type: ignore[operator]
        raise MixingError(f"ratio must be in [0, 1), not {ratio}")
    return int(math.floor(n_real * ratio / (1.0 - ratio) + 0.5))  # type: ignore[operator]


def mix(
    real_train: list[ImageRecord],
    pool: list[ImageRecord],
    *,
    ratio: float | None = None,
    count: int | None = None,
    seed: int = 0,
    when_short: str = "error",
) -> tuple[list[ImageRecord], dict[str, Any]]:
    """real + a seeded random choice of ``pool``.

    A pool smaller than the mix asks raises, or with ``when_short="all_passed"`` gives all of
    it (``info["asked"]`` keeps the asked count).

    The pool is put in path order first, so the choice and the order of the result do not
    depend on the order in which images entered the catalog (parallel generation workers
    commit in whichever order they finish).
    """
    asked = need = synthetic_count(len(real_train), ratio, count)
    if need > len(pool) and when_short == "all_passed":
        need = len(pool)
    elif need > len(pool):
        raise MixingError(f"the synthetic pool has {len(pool)} usable images; "
                          f"the mix needs {need}")
    pool = sorted(pool, key=lambda r: r.path)
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(pool), size=need, replace=False).tolist()) if need else []
    synthetic = [pool[i] for i in chosen]
    info = {"n_real": len(real_train), "n_synthetic": need, "asked": asked,
            "synthetic_share": need / max(1, len(real_train) + need)}
    return list(real_train) + synthetic, info
