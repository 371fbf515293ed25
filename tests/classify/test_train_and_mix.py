import numpy as np
import pytest
import torch
from glaze_type_world import add

from craftlora.catalog.store import QCResult
from craftlora.classify.augment import AugmentConfig
from craftlora.classify.cache import build_cache
from craftlora.classify.config import TrainConfig
from craftlora.classify.dataset import label_records
from craftlora.classify.mixing import (
    MixingError,
    mix,
    qc_passed,
    real_splits,
    synthetic_count,
    synthetic_pool,
)
from craftlora.classify.train import train_classifier
from craftlora.classify.weights import MultiTaskLoss


def tasks_of(ws):
    return {t: a.values for t, a in ws.config.attributes.items()}


def tiny_cfg(**kw):
    base = dict(backbone="mobilenet_v3_small", pretrained="none", image_size=16, batch_size=8,
                epochs=2, patience=5, backbone_lr=3e-3, head_lr=3e-3,
                augment=AugmentConfig(enabled=False))
    base.update(kw)
    return TrainConfig(**base)


def test_a_few_steps_lower_the_loss(glaze_type_ws):
    ws = glaze_type_ws
    tasks = tasks_of(ws)
    sp = real_splits(ws.catalog)
    cache = build_cache(ws.root, sp.train, 16, progress=False)
    train = label_records(sp.train, tasks, cached=set(cache.ids))
    torch.manual_seed(0)
    from craftlora.models.classifier import build_classifier

    model = build_classifier("mobilenet_v3_small", tasks, "none", image_size=16)
    loss_fn = MultiTaskLoss({t: torch.ones(len(v)) for t, v in tasks.items()}, {})
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = (cache.take(train.ids).float() / 255 - 0.5) / 0.25
    y = {t: torch.from_numpy(v) for t, v in train.labels.items()}
    model.train()
    losses = []
    for _ in range(12):
        loss, _ = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3])


def test_train_classifier_records_history_and_is_seeded(glaze_type_ws):
    ws = glaze_type_ws
    tasks = tasks_of(ws)
    sp = real_splits(ws.catalog)
    cache = build_cache(ws.root, sp.train + sp.val, 16, progress=False)
    train = label_records(sp.train, tasks, cached=set(cache.ids))
    val = label_records(sp.val, tasks, cached=set(cache.ids))
    cfg = tiny_cfg(augment=AugmentConfig())
    a = train_classifier(cfg, tasks, cache, train, val, seed=1, progress=False)
    b = train_classifier(cfg, tasks, cache, train, val, seed=1, progress=False)
    assert [h["epoch"] for h in a.history] == [1, 2]
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    assert set(a.history[0]["val_f1_macro"]) == {"glaze", "type"}
    assert a.best_epoch in (1, 2)


def test_synthetic_count_math():
    assert synthetic_count(900, 0.10, None) == 100  # 100 / (900 + 100) = 10 %
    assert synthetic_count(950, 0.05, None) == 50
    assert synthetic_count(10, None, 7) == 7
    with pytest.raises(MixingError):
        synthetic_count(10, 0.1, 3)


def test_mix_never_puts_synthetic_in_val_or_test(glaze_type_ws):
    ws = glaze_type_ws
    rng = np.random.default_rng(5)
    syn = [add(ws, "black", "vase", rng, split=None, origin="synthetic", set_name="oracle")
           for _ in range(8)]
    sp = real_splits(ws.catalog)
    pool, note = synthetic_pool(ws.catalog, "oracle")
    assert sorted(r.id for r in pool) == syn and "no QC" in note
    train, info = mix(sp.train, pool, ratio=0.1, seed=0)
    assert info["n_synthetic"] == 4  # 36 real → 4 synthetic = 10 %
    val_test = {r.id for r in sp.val + sp.test}
    assert not val_test & set(syn)
    assert all(r.origin == "real" for r in sp.val + sp.test)
    assert len({r.id for r in train} & set(syn)) == 4
    # the catalog itself refuses a synthetic image in val
    with pytest.raises(Exception, match="synthetic"):
        ws.catalog.set_splits({syn[0]: "val"})
    with pytest.raises(MixingError, match="needs 40"):
        mix(sp.train, pool, count=40)
    with pytest.raises(MixingError, match="real images"):
        synthetic_pool(ws.catalog, "real")


def test_mix_does_not_depend_on_catalog_order(glaze_type_ws):
    # two generation workers commit in whichever order they finish: the same images can get
    # their ids in another order, and the mix must not change with it
    ws = glaze_type_ws
    rng = np.random.default_rng(7)
    for _ in range(10):
        add(ws, "white", "vase", rng, split=None, origin="synthetic", set_name="gen2")
    pool, _ = synthetic_pool(ws.catalog, "gen2")
    sp = real_splits(ws.catalog)
    shuffled = [pool[i] for i in (3, 9, 0, 7, 1, 8, 2, 6, 4, 5)]
    for n in (4, 10):  # a choice, and the whole pool
        a, _ = mix(sp.train, pool, count=n, seed=1)
        b, _ = mix(sp.train, shuffled, count=n, seed=1)
        assert [r.path for r in a] == [r.path for r in b]
        assert len({r.path for r in a[len(sp.train):]}) == n


def test_only_qc_passed_synthetic_images(glaze_type_ws):
    ws = glaze_type_ws
    rng = np.random.default_rng(6)
    ids = [add(ws, "white", "bowl", rng, split=None, origin="synthetic", set_name="gen")
           for _ in range(4)]
    ws.catalog.record_qc([
        QCResult(ids[0], "blank", True), QCResult(ids[0], "dup", True),
        QCResult(ids[1], "blank", True), QCResult(ids[1], "dup", False),
        QCResult(ids[2], "blank", True),
    ])  # ids[3] has no QC rows: not passed once QC exists
    pool, note = synthetic_pool(ws.catalog, "gen")
    assert [r.id for r in pool] == [ids[0], ids[2]]
    assert "2 of 4" in note
    kept, _ = qc_passed(ws.catalog, ws.catalog.images(set_name="gen"))
    assert len(kept) == 2


def test_bad_image_is_reported_and_skipped(glaze_type_ws):
    ws = glaze_type_ws
    rec = ws.catalog.images(split="train")[0]
    (ws.root / rec.path).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    cache = build_cache(ws.root, ws.catalog.images(split="train"), 16, progress=False)
    assert len(cache.failed) == 1 and cache.failed[0]["path"] == rec.path
    lab = label_records(ws.catalog.images(split="train"), tasks_of(ws), cached=set(cache.ids))
    assert rec.id not in lab.ids and "decoded" in lab.skipped[0]["reason"]


def test_cache_reused_from_disk(glaze_type_ws, tmp_path):
    ws = glaze_type_ws
    recs = ws.catalog.images(split="val")
    a = build_cache(ws.root, recs, 16, cache_dir=tmp_path / "c", progress=False)
    for r in recs:  # decoding again would now fail: the second build must read the cache
        (ws.root / r.path).write_bytes(b"")
    b = build_cache(ws.root, recs, 16, cache_dir=tmp_path / "c", progress=False)
    assert torch.equal(a.pixels, b.pixels) and a.ids == b.ids and not b.failed
