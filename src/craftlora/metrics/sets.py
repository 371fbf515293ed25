"""Metrics over catalog image sets: the functions the CLI, the demo and reports call.

A set is named ``NAME`` or ``NAME:SPLIT`` (``real:test``); an ``ids`` list selects images
directly. Images that do not decode are skipped and listed in the result; every result carries
the extractor id, its weights hash and the sample sizes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from craftlora.catalog.store import ImageRecord
from craftlora.catalog.workspace import Workspace
from craftlora.data.imageio import BadImageError, load_rgb
from craftlora.metrics.agreement import attribute_agreement
from craftlora.metrics.diversity import diversity_result
from craftlora.metrics.fd import fd_between, kid
from craftlora.metrics.features import FeatureExtractor
from craftlora.metrics.judge import Judge
from craftlora.metrics.manifold import precision_recall


class SetError(ValueError):
    """A set spec that selects no images, or too few for the metric."""


def select(ws: Workspace, spec: str, *, limit: int | None = None, seed: int = 0,
           ids: Iterable[int] | None = None) -> list[ImageRecord]:
    """Records of ``NAME[:SPLIT]`` (optionally a seeded random subset of ``limit``)."""
    name, _, split = spec.partition(":")
    recs = ws.catalog.images(set_name=name, split=split or None, ids=ids)
    if not recs:
        raise SetError(f"set {spec!r} selects no images (sets: {sorted(ws.catalog.sets())})")
    if limit is not None and len(recs) > limit:
        pick = np.sort(np.random.default_rng(seed).choice(len(recs), limit, replace=False))
        recs = [recs[i] for i in pick]
    return recs


def load_images(ws: Workspace, records: Sequence[ImageRecord]
                ) -> tuple[list[ImageRecord], list[np.ndarray], list[str]]:
    """(decoded records, uint8 arrays, errors naming the files that did not decode)."""
    ok, arrays, errors = [], [], []
    for r in records:
        try:
            im = load_rgb(ws.resolve(r.path), max_pixels=ws.config.ingest.max_pixels)
        except BadImageError as e:
            errors.append(str(e))
            continue
        ok.append(r)
        arrays.append(np.asarray(im))
    return ok, arrays, errors


def split_halves(records: Sequence[ImageRecord], seed: int = 0
                 ) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """Two disjoint random halves of a record list (seeded)."""
    order = np.random.default_rng(seed).permutation(len(records))
    half = len(records) // 2
    return [records[i] for i in order[:half]], [records[i] for i in order[half:2 * half]]


def compare_records(ws: Workspace, a: Sequence[ImageRecord], b: Sequence[ImageRecord],
                    extractor: FeatureExtractor, *, with_kid: bool = True,
                    with_pr: bool = False, kid_subsets: int = 100, seed: int = 0
                    ) -> dict[str, Any]:
    """FD (and KID, precision/recall) between two record lists in one feature space."""
    _, xa, err_a = load_images(ws, a)
    _, xb, err_b = load_images(ws, b)
    if min(len(xa), len(xb)) < 2:
        raise SetError(f"need at least 2 decodable images per set, got {len(xa)} and {len(xb)}")
    fa, fb = extractor.features(xa), extractor.features(xb)
    out: dict[str, Any] = {**fd_between(fa, fb), **extractor.describe()}
    if with_kid:
        k = kid(fa, fb, subsets=kid_subsets, seed=seed)
        out["kid"] = {"mean": k["mean"], "std": k["std"], "subset_size": k["subset_size"],
                      "subsets": k["subsets"]}
    if with_pr and min(len(fa), len(fb)) > 3:
        pr = precision_recall(fa, fb)
        out["precision"], out["recall"] = pr["precision"], pr["recall"]
    out["skipped"] = err_a + err_b
    return out


def compare_sets(ws: Workspace, spec_a: str, spec_b: str, extractor: FeatureExtractor, *,
                 limit: int | None = None, seed: int = 0, **kw: Any) -> dict[str, Any]:
    """``compare_records`` for two set specs; the result names both sets. The same spec twice
    compares two disjoint random halves of it (``"halves": true``) — the no-difference
    baseline that other FDs at the same N should be read against."""
    if spec_a == spec_b:
        a, b = split_halves(select(ws, spec_a), seed=seed)
        if limit is not None:
            a, b = a[:limit], b[:limit]
        out = compare_records(ws, a, b, extractor, seed=seed, **kw)
        return {"a": spec_a, "b": spec_b, "halves": True, **out}
    out = compare_records(ws, select(ws, spec_a, limit=limit, seed=seed),
                          select(ws, spec_b, limit=limit, seed=seed), extractor, seed=seed, **kw)
    return {"a": spec_a, "b": spec_b, "halves": False, **out}


def set_agreement(ws: Workspace, spec: str, judge: Judge, *,
                  pairs: Sequence[Sequence[str]] = (("glaze", "type"),),
                  limit: int | None = None, seed: int = 0) -> dict[str, Any]:
    """How often the judge reads each image's catalog attributes back (only attributes the
    judge knows; images without any are skipped)."""
    recs, arrays, errors = load_images(ws, select(ws, spec, limit=limit, seed=seed))
    keep = [(r, a) for r, a in zip(recs, arrays, strict=True)
            if any(k in judge.labels for k in r.attributes)]
    if not keep:
        raise SetError(f"set {spec!r} has no images with attributes the judge knows "
                       f"({sorted(judge.labels)})")
    preds = judge.predict([a for _, a in keep])
    intended = [{k: v for k, v in r.attributes.items() if k in judge.labels} for r, _ in keep]
    known = [p for p in pairs if all(a in judge.labels for a in p)]
    out = attribute_agreement(preds, intended, pairs=known)
    # the judge's own held-out accuracy (when its checkpoint records it) is the ceiling
    ceiling = judge.meta.get("heldout")
    return {"set": spec, **out, **judge.describe(), "judge_heldout": ceiling, "skipped": errors}


def set_diversity(ws: Workspace, spec: str, net: Any, *, group_by: str = "prompt",
                  min_group: int = 2) -> dict[str, Any]:
    """LPIPS diversity with images grouped by a provenance key (default the prompt), or by
    ``caption``; groups smaller than ``min_group`` are left out."""
    recs, arrays, errors = load_images(ws, select(ws, spec))
    groups: dict[str, list[np.ndarray]] = {}
    for r, a in zip(recs, arrays, strict=True):
        key = r.caption if group_by == "caption" else r.provenance.get(group_by)
        if key is not None:
            groups.setdefault(str(key), []).append(a)
    usable = [g for g in groups.values() if len(g) >= min_group]
    if not usable:
        raise SetError(f"set {spec!r}: no group of {min_group}+ images sharing {group_by!r}")
    out = diversity_result(usable, net)
    out.pop("per_group")
    return {"set": spec, "group_by": group_by, **out, "skipped": errors}
