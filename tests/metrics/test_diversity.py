"""LPIPS diversity protocol. The ImageNet backbone weights are not on this machine, so the
protocol runs on the lpips package's real network with seeded random weights (its id says so)
and on a plain deterministic distance with a hand-computed answer."""

from __future__ import annotations

import numpy as np
import pytest

from craftlora.metrics.diversity import diversity_result, group_diversity, lpips_diversity
from craftlora.metrics.features import LpipsExtractor, get_extractor
from craftlora.metrics.weights import MissingWeightsError


def _imgs(seed: int, n: int, size: int = 32) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def random_lpips() -> LpipsExtractor:
    return get_extractor("lpips-alex", weights="random")


def test_identical_images_have_zero_diversity(random_lpips):
    img = _imgs(0, 1)[0]
    assert random_lpips.id == "lpips-alex-random"
    assert lpips_diversity([[img] * 4, [img] * 3], random_lpips) == 0.0


def test_different_images_have_positive_diversity(random_lpips):
    groups = [_imgs(1, 3), _imgs(2, 3)]
    r = diversity_result(groups, random_lpips)
    assert r["lpips_diversity"] > 0 and r["groups"] == 2 and r["n"] == 6
    assert r["extractor"] == "lpips-alex-random" and len(r["weights_sha256"]) == 64
    # more alike images (one base + small noise) are less diverse than unrelated ones
    base = _imgs(3, 1)[0].astype(np.int16)
    rng = np.random.default_rng(4)
    close = [np.clip(base + rng.integers(-8, 9, base.shape), 0, 255).astype(np.uint8)
             for _ in range(3)]
    assert group_diversity(close, random_lpips) < group_diversity(_imgs(5, 3), random_lpips)


def test_lpips_module_and_function_nets_give_the_protocol(random_lpips):
    groups = [_imgs(6, 3)]
    assert lpips_diversity(groups, random_lpips.module) == pytest.approx(
        lpips_diversity(groups, random_lpips), rel=1e-6)

    def mean_abs(a, b):
        return np.array([np.abs(x.astype(float) - y.astype(float)).mean()
                         for x, y in zip(a, b, strict=True)])

    flat = [np.full((4, 4, 3), v, np.uint8) for v in (0, 10, 40)]
    # pairs: |0−10| = 10, |0−40| = 40, |10−40| = 30 → 80/3; second group: 0
    got = lpips_diversity([flat, [flat[0], flat[0]]], mean_abs)
    assert got == pytest.approx((80 / 3 + 0) / 2)


def test_single_image_group_is_an_error(random_lpips):
    with pytest.raises(ValueError, match="at least 2"):
        lpips_diversity([_imgs(7, 1)], random_lpips)


def test_missing_backbone_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="alexnet-owt-7be5be79.pth"):
        get_extractor("lpips-alex")
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth"):
        get_extractor("lpips-vgg")
