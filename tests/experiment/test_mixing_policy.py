"""The experiment config's mixing policy when QC left fewer images than a mix asks."""

import numpy as np
import pytest
from glaze_type_world import add

from craftlora.classify.mixing import MixingError, mix, real_splits, synthetic_pool
from craftlora.experiment.config import MixConfig
from craftlora.experiment.runner import short_mixes


def test_all_passed_uses_the_whole_short_pool_and_says_so(glaze_type_ws):
    ws = glaze_type_ws
    rng = np.random.default_rng(7)
    for _ in range(3):
        add(ws, "black", "vase", rng, split=None, origin="synthetic", set_name="few")
    sp = real_splits(ws.catalog)
    pool, _ = synthetic_pool(ws.catalog, "few")
    with pytest.raises(MixingError, match="needs 4"):  # 36 real → 4 make 10 %
        mix(sp.train, pool, ratio=0.1)
    train, info = mix(sp.train, pool, ratio=0.1, when_short="all_passed")
    assert (info["n_synthetic"], info["asked"]) == (3, 4)
    assert len(train) == len(sp.train) + 3
    _, enough = mix(sp.train, pool, ratio=0.05, when_short="all_passed")  # 36 → 2
    assert (enough["n_synthetic"], enough["asked"]) == (2, 2)

    configs = [MixConfig(name="strict", synthetic="few", ratio=0.1),
               MixConfig(name="lenient", synthetic="few", ratio=0.1, when_short="all_passed"),
               MixConfig(name="fits", synthetic="few", ratio=0.05, when_short="all_passed")]
    notes = short_mixes(configs, {"few": pool}, len(sp.train))
    assert notes == ["lenient: only 3 images of set 'few' passed QC, fewer than the 4 that "
                     "make 10% of the training set; all 3 are used"]


def test_when_short_is_a_named_choice():
    with pytest.raises(ValueError, match="when_short"):
        MixConfig(name="x", synthetic="s", ratio=0.1, when_short="some")
