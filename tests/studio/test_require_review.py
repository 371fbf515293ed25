"""`require_review = true`: an experiment arm mixes only images a reviewer accepted."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from craftlora.classify.mixing import synthetic_pool
from craftlora.experiment.config import ExperimentConfig


def test_pool_keeps_only_newest_accepts(review_ws):
    cat = review_ws.catalog
    syn = [r.id for r in cat.images(set_name="syn")]
    cat.add_review(syn[0], "accept", "ann")
    cat.add_review(syn[1], "accept", "ann")
    cat.add_review(syn[1], "reject", "bob", "artefact")  # newest decision wins
    cat.add_review(syn[2], "reject", "ann", "other")
    cat.add_review(syn[2], "accept", "bob")
    pool, note = synthetic_pool(cat, "syn", require_review=True)
    assert [r.id for r in pool] == [syn[0], syn[2]]
    assert "review: 2 accepted of 12 (3 reviewed)" in note
    assert len(synthetic_pool(cat, "syn")[0]) == 12  # default: review not required


def test_experiment_config_reads_require_review_and_refuses_mixed_filters():
    arms = [{"name": "real"}, {"name": "rev", "synthetic": "syn", "ratio": 0.1,
                               "require_review": True}]
    cfg = ExperimentConfig.model_validate({"workspace": "ws", "configs": arms})
    assert cfg.configs[1].require_review and not cfg.configs[0].require_review
    arms.append({"name": "all", "synthetic": "syn", "ratio": 0.1})
    with pytest.raises(ValidationError, match="differ in require_qc/require_review"):
        ExperimentConfig.model_validate({"workspace": "ws", "configs": arms})
