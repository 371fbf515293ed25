"""The catalog's own guarantees: schema version, constraints, transactions."""

from __future__ import annotations

import pytest

from craftlora.catalog.store import Catalog, CatalogError, QCResult


def _add(cat: Catalog, n: int, **kw) -> int:
    return cat.add_image(sha256=f"{n:064x}", path=f"images/{n}.png", width=8, height=8, **kw)


def test_schema_version_and_wal(tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        assert cat.schema_version >= 1
        assert cat._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (tmp_path / "c.sqlite").exists()


def test_synthetic_refused_in_val_and_test(tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        i = _add(cat, 1, origin="synthetic", set_name="syn")
        cat.set_splits({i: "train"})
        for split in ("val", "test"):
            with pytest.raises(CatalogError, match="synthetic"):
                cat.set_splits({i: split})
        with pytest.raises(CatalogError, match="synthetic"):
            _add(cat, 2, origin="synthetic", split="test")
        assert cat.get(i).split == "train"


def test_transaction_rolls_back_everything(tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        with pytest.raises(CatalogError), cat.transaction():
            _add(cat, 1, attributes={"glaze": "white"})
            _add(cat, 1)  # same sha256: refused, the whole transaction goes
        assert cat.count() == 0
        assert cat.execute("SELECT count(*) FROM attributes")[0][0] == 0


def test_qc_upsert_and_reviews(tmp_path):
    with Catalog(tmp_path / "c.sqlite") as cat:
        i = _add(cat, 1)
        cat.record_qc([QCResult(i, "blank", False, 0.0, "flat image")])
        cat.record_qc([QCResult(i, "blank", True, 0.3)])
        (res,) = cat.qc_results()[i]
        assert res.passed and res.score == pytest.approx(0.3)
        cat.add_review(i, "reject")
        cat.add_review(i, "accept", reviewer="ann")
        assert cat.latest_reviews() == {i: "accept"}
        with pytest.raises(CatalogError):
            cat.add_review(i, "maybe")


def test_newer_schema_is_refused(tmp_path):
    import sqlite3

    path = tmp_path / "c.sqlite"
    Catalog(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 999")
    db.close()
    with pytest.raises(CatalogError, match="newer"):
        Catalog(path)
