"""The paired bootstrap on hand-made per-seed figures."""

import pytest

from craftlora.sweep.stats import paired_seed_bootstrap, seed_interval


def test_paired_differences_by_hand():
    base = {0: 10.0, 1: 12.0, 2: 14.0, 7: 99.0}  # seed 7 has no partner: left out
    other = {0: 8.0, 1: 11.0, 2: 12.0}
    r = paired_seed_bootstrap(base, other, n_boot=4000)
    assert r["delta"] == pytest.approx(-5 / 3) and r["n_seeds"] == 3
    # resampled means of {-2, -1, -2}: -1 only when all three draws are -1 (1/27 > 2.5 %)
    assert r["ci_low"] == pytest.approx(-2.0) and r["ci_high"] == pytest.approx(-1.0)
    assert r["p_le_0"] == 1.0


def test_pairing_removes_the_seed_noise():
    # seeds differ a lot, the variant adds exactly 0.5 to each: the interval is that 0.5
    base = {0: 1.0, 1: 5.0, 2: 9.0}
    r = paired_seed_bootstrap(base, {s: v + 0.5 for s, v in base.items()})
    assert r["delta"] == r["ci_low"] == r["ci_high"] == pytest.approx(0.5)
    assert r["p_le_0"] == 0.0
    lo, hi = seed_interval(base)  # unpaired, the same seeds spread widely
    assert lo < 3.0 and hi > 7.0


def test_no_shared_seed():
    assert paired_seed_bootstrap({0: 1.0}, {1: 2.0})["delta"] is None
