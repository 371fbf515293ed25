"""Adaptive split: the rule at each size boundary, determinism, stability, synthetic = train."""

from __future__ import annotations

from collections import Counter

import pytest

from craftlora.catalog.split import assign_splits, split_targets

SIZES = {("white", "bowl"): 1, ("white", "vase"): 2, ("celadon", "bowl"): 3,
         ("celadon", "vase"): 9, ("black", "bowl"): 10, ("blue", "jar"): 20}


@pytest.mark.parametrize("n,expected", [
    (1, (1, 0, 0)), (2, (0, 1, 1)), (3, (1, 1, 1)), (9, (7, 1, 1)), (10, (7, 2, 1)),
    (20, (14, 4, 2)), (15, (10, 3, 2)),
])
def test_targets_at_each_boundary(n, expected):
    t = split_targets(n)
    assert (t["train"], t["val"], t["test"]) == expected


def _per_combo(ws) -> dict[tuple[str, str], Counter]:
    out: dict[tuple[str, str], Counter] = {}
    for r in ws.catalog.images(origin="real"):
        out.setdefault((r.attributes["glaze"], r.attributes["type"]), Counter())[r.split] += 1
    return out


def test_split_rules_in_a_workspace(labelled_ws):
    ws = labelled_ws(SIZES, synthetic=5)
    summary = assign_splits(ws, seed=3)
    got = _per_combo(ws)
    for combo, n in SIZES.items():
        t = split_targets(n)
        assert got[combo] == Counter({k: v for k, v in t.items() if v}), combo
    assert {r.split for r in ws.catalog.images(origin="synthetic")} == {"train"}
    assert summary["assigned"] == sum(SIZES.values()) + 5
    assert summary["by_size"]["n>=10"] == {"groups": 2, "images": 30}
    assert summary["off_target"] == []


def test_deterministic_for_a_seed_and_seed_matters(labelled_ws):
    a, b = labelled_ws(SIZES, name="a"), labelled_ws(SIZES, name="b")
    assign_splits(a, seed=1)
    assign_splits(b, seed=1)
    splits = lambda ws: [(r.sha256, r.split) for r in ws.catalog.images()]  # noqa: E731
    assert splits(a) == splits(b)
    assign_splits(b, seed=2, reset=True)
    assert splits(a) != splits(b)


def test_existing_assignments_never_move_without_reset(labelled_ws):
    ws = labelled_ws({("blue", "jar"): 10})
    assign_splits(ws, seed=0)
    before = {r.id: r.split for r in ws.catalog.images()}
    # a different seed without --reset changes nothing
    assert assign_splits(ws, seed=99)["assigned"] == 0
    assert {r.id: r.split for r in ws.catalog.images()} == before
    # new images of the same combination fill what the combination now lacks (n=20: 14/4/2)
    for i in range(10):
        ws.catalog.add_image(sha256=f"{1000 + i:064x}", path=f"images/n{i}.png", width=8,
                             height=8, attributes={"glaze": "blue", "type": "jar"})
    summary = assign_splits(ws, seed=0)
    assert summary["assigned"] == 10
    after = {r.id: r.split for r in ws.catalog.images()}
    assert all(after[i] == s for i, s in before.items())
    assert Counter(after.values()) == Counter({"train": 14, "val": 4, "test": 2})
    # reset recomputes from scratch
    assert assign_splits(ws, seed=5, reset=True)["assigned"] == 20


def test_kept_assignments_that_no_longer_fit_are_reported(labelled_ws):
    ws = labelled_ws({("white", "cup"): 1})
    assign_splits(ws)
    ws.catalog.add_image(sha256="e" * 64, path="images/e.png", width=8, height=8,
                         attributes={"glaze": "white", "type": "cup"})
    summary = assign_splits(ws)
    # n=2 wants one val and one test, but the first image stays in train
    assert Counter(r.split for r in ws.catalog.images()) == Counter({"train": 1, "val": 1})
    assert len(summary["off_target"]) == 1
