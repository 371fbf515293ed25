"""LPIPS diversity (the StarGAN v2 protocol): mean pairwise LPIPS among the K outputs of one
prompt or condition, averaged over prompts. Higher = more varied outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import torch

from craftlora.metrics.images import ImageLike, as_rgb_list

PairDistance = Callable[[list[np.ndarray], list[np.ndarray]], np.ndarray]


def _pair_distance(net: Any) -> PairDistance:
    """Accept an LpipsExtractor (``.distance``), an ``lpips.LPIPS``-style module taking two
    [−1, 1] NCHW tensors, or a plain function of two image lists."""
    if hasattr(net, "distance"):
        return net.distance
    if isinstance(net, torch.nn.Module):
        from craftlora.metrics.features import LpipsExtractor

        @torch.no_grad()
        def dist(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
            out = net(LpipsExtractor.to_tensor(a), LpipsExtractor.to_tensor(b))
            return out.reshape(-1).cpu().numpy().astype(np.float64)

        return dist
    if callable(net):
        return net
    raise TypeError(f"net must be an LPIPS extractor, module or distance function, not {net!r}")


def group_diversity(group: Sequence[ImageLike], net: Any) -> float:
    """Mean distance over all pairs i < j of one group (needs at least 2 images)."""
    arrays = as_rgb_list(group)
    if len(arrays) < 2:
        raise ValueError(f"a diversity group needs at least 2 images, got {len(arrays)}")
    pairs = list(combinations(range(len(arrays)), 2))
    d = _pair_distance(net)([arrays[i] for i, _ in pairs], [arrays[j] for _, j in pairs])
    return float(np.mean(d))


def lpips_diversity(groups: Sequence[Sequence[ImageLike]], net: Any) -> float:
    """Mean over groups of each group's mean pairwise distance."""
    if not groups:
        raise ValueError("lpips_diversity needs at least one group")
    return float(np.mean([group_diversity(g, net) for g in groups]))


def diversity_result(groups: Sequence[Sequence[ImageLike]], net: Any) -> dict[str, Any]:
    """``lpips_diversity`` with the extractor id, weights hash and sizes attached."""
    per = [group_diversity(g, net) for g in groups]
    return {
        "lpips_diversity": float(np.mean(per)),
        "per_group": per,
        "groups": len(per),
        "n": int(sum(len(g) for g in groups)),
        "extractor": getattr(net, "id", type(net).__name__),
        "weights_sha256": getattr(net, "weights_sha256", "unknown"),
    }
