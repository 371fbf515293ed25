"""Attribute agreement on hand-made predictions."""

from __future__ import annotations

import pytest

from craftlora.metrics.agreement import attribute_agreement

INTENDED = [
    {"glaze": "celadon", "type": "bowl", "kiln": "Longquan"},
    {"glaze": "white", "type": "vase", "kiln": "Ding"},
    {"glaze": "black", "type": "tea bowl", "kiln": "Jian"},
    {"glaze": "celadon", "type": "dish", "kiln": "Longquan"},
]
PREDICTED = [
    {"glaze": "celadon", "type": "bowl", "kiln": "Longquan"},  # all right
    {"glaze": "white", "type": "vase", "kiln": "Jun"},  # glaze+type right, kiln wrong
    {"glaze": "brown", "type": "tea bowl", "kiln": "Jian"},  # glaze wrong
    {"glaze": "celadon", "type": "dish"},  # kiln unreadable
]


def test_rates_per_attribute_pair_and_combo():
    r = attribute_agreement(PREDICTED, INTENDED)
    assert r["n"] == 4
    assert r["glaze"] == 0.75 and r["type"] == 1.0 and r["kiln"] == 0.5
    assert r["per_attribute"] == {"glaze": 0.75, "kiln": 0.5, "type": 1.0}
    assert r["glaze_type"] == 0.75
    assert r["combo"] == 0.25


def test_custom_pairs_and_errors():
    r = attribute_agreement(PREDICTED, INTENDED, pairs=(("kiln", "glaze"),))
    assert r["kiln_glaze"] == 0.25 and "glaze_type" not in r
    with pytest.raises(ValueError, match="3 predictions for 4"):
        attribute_agreement(PREDICTED[:3], INTENDED)
    with pytest.raises(ValueError, match="at least one"):
        attribute_agreement([], [])
