import math
from collections import Counter

import numpy as np
import pytest

from craftlora.classify.sampling import make_sampler, sample_weights, threshold_repeat


def test_task_weights_are_inverse_frequency():
    w = sample_weights(np.array([0, 0, 0, 1]), None)
    assert w.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0])


def test_combo_weights_are_inverse_sqrt_and_combine():
    combos = [("a",)] * 4 + [("b",)]
    assert sample_weights(None, combos).tolist() == pytest.approx([0.5] * 4 + [1.0])
    both = sample_weights(np.array([0, 0, 1, 1, 1]), combos)
    assert both.tolist() == pytest.approx([0.25, 0.25, 1 / 6, 1 / 6, 1 / 3])


def test_sampler_balances_classes_and_is_seeded():
    labels = np.array([0] * 90 + [1] * 10)
    sampler = make_sampler(sample_weights(labels, None), seed=3, num_samples=4000)
    draws = list(sampler)
    share = Counter(labels[draws].tolist())[1] / len(draws)
    assert abs(share - 0.5) < 0.05  # 10 % of the data, half of the draws
    assert draws == list(make_sampler(sample_weights(labels, None), seed=3, num_samples=4000))


def test_threshold_repeat_fills_rare_combos():
    combos = [("x",)] * 5 + [("y",)] * 2 + [("z",)]
    idx = threshold_repeat(combos, 4)
    got = Counter(combos[i] for i in idx)
    assert got == {("x",): 5, ("y",): 4, ("z",): 4}
    assert sorted(set(idx.tolist())) == list(range(8))


def test_needs_some_labels():
    with pytest.raises(ValueError):
        sample_weights(None, None)
    assert math.isfinite(sample_weights(np.array([1]), [("a",)])[0])


def test_task_sampler_is_opt_in():
    from craftlora.classify.config import TrainConfig

    assert TrainConfig().sampler_task is None  # class weights alone by default
    assert TrainConfig(sampler_task="glaze").sampler_task == "glaze"
    assert TrainConfig(sampler_task="none").sampler_task is None  # TOML has no null
    assert TrainConfig(sampler_task="None").sampler_task is None
