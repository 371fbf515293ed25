"""Attribute agreement: how often the judge reads the intended attributes off an image.

Per attribute, for named pairs (the porcelain study's "correct glaze–type combination" is the
pair ("glaze", "type") → key ``glaze_type``), and ``combo`` = every intended attribute right.
An attribute the judge cannot read (absent from its prediction) counts as wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def attribute_agreement(
    predicted: Sequence[Mapping[str, str]],
    intended: Sequence[Mapping[str, str]],
    pairs: Sequence[Sequence[str]] = (("glaze", "type"),),
) -> dict[str, Any]:
    """Agreement rates over images: ``n``, the rate per attribute (under its own name and in
    ``per_attribute``), one rate per pair and ``combo``."""
    if len(predicted) != len(intended):
        raise ValueError(f"{len(predicted)} predictions for {len(intended)} intended labels")
    n = len(intended)
    if n == 0:
        raise ValueError("attribute_agreement needs at least one image")
    names = sorted({k for d in intended for k in d})
    per: dict[str, float] = {}
    for name in names:
        rows = [(p, i) for p, i in zip(predicted, intended, strict=True) if name in i]
        per[name] = sum(p.get(name) == i[name] for p, i in rows) / len(rows)
    out: dict[str, Any] = {"n": n, "per_attribute": per, **per}
    for pair in pairs:
        key = "_".join(pair)
        rows = [(p, i) for p, i in zip(predicted, intended, strict=True)
                if all(a in i for a in pair)]
        out[key] = (sum(all(p.get(a) == i[a] for a in pair) for p, i in rows) / len(rows)
                    if rows else None)
    out["combo"] = sum(all(p.get(k) == v for k, v in i.items())
                       for p, i in zip(predicted, intended, strict=True)) / n
    return out
