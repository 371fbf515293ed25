"""Training-noise helpers: pyramid (multi-resolution) noise."""

from __future__ import annotations

import pytest
import torch

from craftlora.train.losses import pyramid_noise


def _draw(seed: int, iterations: int, discount: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return pyramid_noise(torch.randn((4, 16, 16), generator=g), g, iterations, discount)


def test_pyramid_noise_is_a_function_of_the_generator_and_has_unit_std():
    a, b = _draw(7, 3), _draw(7, 3)
    assert torch.equal(a, b)
    assert not torch.equal(a, _draw(8, 3))
    assert a.std().item() == pytest.approx(1.0, abs=1e-5)


def test_pyramid_noise_moves_energy_to_low_frequencies():
    def low_share(x: torch.Tensor) -> float:
        # energy of the 4x4 block means over the total: 1/16 for white noise
        pooled = torch.nn.functional.avg_pool2d(x[None], 4)[0]
        return float((pooled**2).mean() / (x**2).mean())

    plain = sum(low_share(torch.randn((4, 16, 16), generator=torch.Generator().manual_seed(s)))
                for s in range(200)) / 200
    pyr = sum(low_share(_draw(s, 6, 0.8)) for s in range(200)) / 200
    assert plain == pytest.approx(1 / 16, rel=0.15)
    assert pyr > 3 * plain


def test_pyramid_noise_wants_one_sample():
    with pytest.raises(ValueError, match="one sample"):
        pyramid_noise(torch.randn((2, 4, 8, 8)), torch.Generator(), 3, 0.3)
