import numpy as np
import pytest
import torch

from craftlora.classify.weights import MultiTaskLoss, class_counts, effective_number_weights


def test_effective_number_hand_computed():
    # beta = 0.999: E(1000) = (1 - 0.999**1000) / 0.001 = 632.3046, E(10) = 9.955120
    # raw weights 1/E = 0.00158152, 0.10045084; two classes present → scaled to sum 2
    w = effective_number_weights([1000, 10], beta=0.999, cap=10.0)
    assert w == pytest.approx([0.0310002, 1.9689998], rel=1e-5)
    assert w.sum() == pytest.approx(2.0)


def test_absent_class_gets_zero_and_cap_applies():
    # E(1) = 1 → raw 1.0; E(1000) → 0.00158152; scaled to sum 2: 1.99684, 0.00316
    w = effective_number_weights([1000, 1, 0], beta=0.999, cap=1.5)
    assert w[1] == 1.5
    assert w[0] == pytest.approx(2 * 0.00158152 / (1 + 0.00158152), rel=1e-4)
    assert w[2] == 0.0


def test_beta_zero_is_uniform():
    assert effective_number_weights([5, 50, 500], beta=0.0) == pytest.approx([1, 1, 1])


def test_bad_beta():
    with pytest.raises(ValueError, match="beta"):
        effective_number_weights([1, 2], beta=1.0)


def test_class_counts_ignores_unknown():
    assert class_counts(np.array([0, 2, 2, -1]), 4).tolist() == [1, 0, 2, 0]


def test_loss_is_weighted_sum_of_tasks():
    logits = {"a": torch.tensor([[2.0, 0.0], [0.0, 1.0]]), "b": torch.tensor([[0.5, 0.1, 0.0]])}
    targets = {"a": torch.tensor([0, 0]), "b": torch.tensor([2])}
    wa, wb = torch.tensor([1.0, 3.0]), torch.ones(3)
    loss, parts = MultiTaskLoss({"a": wa, "b": wb}, {"a": 2.0, "b": 0.5})(logits, targets)
    ce_a = torch.nn.functional.cross_entropy(logits["a"], targets["a"], weight=wa)
    ce_b = torch.nn.functional.cross_entropy(logits["b"], targets["b"])
    assert float(loss) == pytest.approx(float(2.0 * ce_a + 0.5 * ce_b))
    assert parts["a"] == pytest.approx(float(ce_a))
