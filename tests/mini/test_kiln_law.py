"""The mini-kiln vocabulary, constraints and long-tailed law."""

from __future__ import annotations

import itertools

import pytest

from craftlora.catalog.stats import combination_stats
from craftlora.mini import kiln


def test_vocabulary_order_and_sizes():
    assert list(kiln.ATTRIBUTES) == ["dynasty", "kiln", "glaze", "type"]
    sizes = [len(v) for v in kiln.ATTRIBUTES.values()]
    assert sizes == [2, 8, 8, 10]
    for attr, values in kiln.ATTRIBUTES.items():
        assert set(kiln.PHRASES[attr]) == set(values), attr


def test_workspace_config_round_trip():
    cfg = kiln.workspace_config()
    assert list(cfg.attributes) == list(kiln.ATTRIBUTES)
    assert cfg.phrase("glaze", "celadon") == kiln.PHRASES["glaze"]["celadon"]
    assert "{glaze.phrase}" in cfg.template() and "{type.phrase}" in cfg.template()


@pytest.mark.parametrize(
    "combo",
    [
        {"dynasty": "Yuan", "kiln": "Guan", "glaze": "celadon", "type": "vase"},  # Guan: Song only
        {"dynasty": "Yuan", "kiln": "Ding", "glaze": "white", "type": "bowl"},  # Ding: Song only
        {"dynasty": "Song", "kiln": "Longquan", "glaze": "black", "type": "bowl"},  # kiln-glaze
        {"dynasty": "Song", "kiln": "Jian", "glaze": "black", "type": "plate"},  # kiln-type
        {"dynasty": "Song", "kiln": "Jun", "glaze": "qingbai", "type": "bowl"},
        {"dynasty": "Ming", "kiln": "Jun", "glaze": "sky blue", "type": "bowl"},  # unknown value
    ],
)
def test_forbidden_combinations_are_invalid(combo):
    assert not kiln.is_valid(combo)


def test_valid_combinations_are_exactly_the_allowed_ones():
    valid = kiln.valid_combinations()
    every = [dict(zip(kiln.ATTRIBUTES, v, strict=True))
             for v in itertools.product(*kiln.ATTRIBUTES.values())]
    assert sum(kiln.is_valid(c) for c in every) == len(valid)
    assert all(kiln.is_valid(c) for c in valid)
    assert 100 < len(valid) < len(every)
    # every value of every attribute appears in some valid combination
    for attr, values in kiln.ATTRIBUTES.items():
        assert {c[attr] for c in valid} == set(values), attr
    # the historical constraints hold
    assert not any(c["dynasty"] == "Yuan" and c["kiln"] in ("Guan", "Ding") for c in valid)
    assert {c["glaze"] for c in valid if c["kiln"] == "Jian"} == {"black", "brown"}
    assert {c["kiln"] for c in valid if c["glaze"] == "ivory white"} == {"Ding"}


def test_default_counts_long_tail():
    counts = kiln.default_counts(6000)
    assert sum(k for _, k in counts) == 6000
    assert all(kiln.is_valid(c) for c, _ in counts)
    fig = combination_stats({tuple(c.values()): k for c, k in counts})
    assert fig["k"] >= 60
    assert min(k for _, k in counts) in (1, 2)
    assert fig["imbalance_ratio"] >= 50
    # every attribute value is in the default set with enough images to learn from
    for attr, values in kiln.ATTRIBUTES.items():
        per_value = {v: sum(k for c, k in counts if c[attr] == v) for v in values}
        assert min(per_value.values()) >= 150, (attr, per_value)


def test_default_counts_small_n_and_errors():
    assert sum(k for _, k in kiln.default_counts(7)) == 7
    assert kiln.default_counts(0) == []
    with pytest.raises(ValueError):
        kiln.default_counts(-1)
