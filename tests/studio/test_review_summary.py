"""Review decisions: summaries, Cohen's κ against scikit-learn, CSV export, the queue and undo."""

from __future__ import annotations

import csv

import pytest
from sklearn.metrics import cohen_kappa_score

from craftlora.catalog.store import QCResult
from craftlora.qc.review import cohen_kappa, note_of, summary, write_csv
from craftlora.studio.context import StudioContext
from craftlora.studio.review_queue import ReviewError, ReviewPass, queue_ids


def test_kappa_matches_sklearn_and_known_values():
    a = ["accept", "accept", "reject", "accept", "reject", "accept", "accept", "reject"]
    b = ["accept", "reject", "reject", "accept", "reject", "accept", "reject", "reject"]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(a, a) == 1.0
    # 2×2 table [[20, 5], [10, 15]]: po = .7, pe = .5 → κ = .4 (textbook example)
    x = ["y"] * 25 + ["n"] * 25
    y = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(x, y) == pytest.approx(0.4)
    assert cohen_kappa(["accept"] * 3, ["accept"] * 3) is None  # chance agreement is 1
    assert cohen_kappa([], []) is None


def test_summary_counts_rates_reasons_and_agreement(review_ws):
    cat = review_ws.catalog
    syn = [r.id for r in cat.images(set_name="syn")]
    ann = ["accept"] * 6 + ["reject"] * 2
    bob = ["accept"] * 5 + ["reject"] * 3
    for i, d in zip(syn, ann, strict=False):
        cat.add_review(i, d, "ann", note_of("artefact") if d == "reject" else "")
    for i, d in zip(syn, bob, strict=False):
        cat.add_review(i, d, "bob", note_of("other", "a  plastic   lid") if d == "reject" else "")
    s = summary(cat, "syn")
    assert (s["decisions"], s["reviewed"], s["accepted"], s["rejected"]) == (16, 8, 5, 3)
    assert s["pass_rate"] == pytest.approx(5 / 8)
    assert s["sets"]["syn"] == {"reviewed": 8, "accepted": 5, "rejected": 3,
                                "pass_rate": pytest.approx(5 / 8), "images": 12}
    assert s["reasons"] == {"other": 3}  # bob decided last: his reasons stand
    assert sum(c["reviewed"] for c in s["combinations"].values()) == 8
    (pair,) = s["agreement"]
    assert pair["reviewers"] == ["ann", "bob"] and pair["images"] == 8
    assert pair["kappa"] == pytest.approx(cohen_kappa_score(ann, bob))


def test_csv_has_every_decision_with_reason_text_and_reviewer(review_ws, tmp_path):
    cat = review_ws.catalog
    i = cat.images(set_name="syn")[0].id
    cat.add_review(i, "reject", "ann", note_of("other", "modern plastic lid"))
    cat.add_review(i, "accept", "bob")
    out = tmp_path / "d.csv"
    assert write_csv(cat, out, "syn") == 2
    rows = list(csv.DictReader(out.open()))
    assert [(r["decision"], r["reason"], r["text"], r["reviewer"]) for r in rows] == [
        ("reject", "other", "modern plastic lid", "ann"), ("accept", "", "", "bob")]
    assert rows[0]["combination"].startswith("glaze=") and rows[0]["image_id"] == str(i)


def test_queue_filters_by_qc_and_reviewer_and_undo_withdraws(review_ws):
    cat = review_ws.catalog
    syn = [r.id for r in cat.images(set_name="syn")]
    cat.record_qc([QCResult(syn[0], "flat", True), QCResult(syn[1], "flat", False)])
    ctx = StudioContext(review_ws.root)
    try:
        assert queue_ids(ctx, "syn", "passed") == [syn[0]]
        assert queue_ids(ctx, "syn", "failed") == [syn[1]]
        assert queue_ids(ctx, "syn", "unchecked") == syn[2:]
        p = ReviewPass(ids=queue_ids(ctx, "syn", "any", "ann"), reviewer="ann")
        with pytest.raises(ReviewError, match="reason"):
            p.decide(ctx, "reject")
        p.decide(ctx, "accept")
        p.decide(ctx, "reject", "artefact")
        assert p.undo(ctx) == syn[1] and p.current == syn[1]
        p.decide(ctx, "reject", "other", "lid")
        rows = [tuple(r) for r in cat.execute("SELECT image_id, decision, note FROM reviews")]
        assert rows == [(syn[0], "accept", ""), (syn[1], "reject", "other: lid")]
        assert queue_ids(ctx, "syn", "any", "ann") == syn[2:]  # a new pass skips decided ones
        with pytest.raises(ReviewError, match="QC filter"):
            queue_ids(ctx, "syn", "green")
    finally:
        ctx.close()
