"""A damaged, truncated, empty or read-only catalog, and hostile export targets: one line each.

Each test asserts nothing lost (the same images, attributes and files), nothing duplicated, an
intact catalog (``PRAGMA quick_check``) and one clear ``error:`` line for what was refused.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from craftlora.catalog.records import write_record
from craftlora.catalog.store import Catalog
from craftlora.data.imageio import sha256_bytes

N = 24


@pytest.fixture
def ws(tmp_path, fx) -> Path:
    """A workspace with N labelled, split and captioned images (through the CLI)."""
    ws = tmp_path / "ws"
    r = fx.run_cli("init", ws, "-a", "glaze=a:glossy,b:matte", "--template", "{glaze.phrase} pot")
    assert r.exit_code == 0, r.output
    src = tmp_path / "src"
    names = fx.write_pngs(src, N)
    (src / "labels.csv").write_text("file,glaze\n" + "".join(
        f"{n},{'ab'[i % 2]}\n" for i, n in enumerate(names)))
    for args in (("ingest", ws, src, "--json"), ("split", ws, "--json"), ("captions", ws)):
        r = fx.run_cli(*args)
        assert r.exit_code == 0, r.output
    db = sqlite3.connect(ws / "catalog.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    db.close()
    return ws


def _splits(db_path: Path) -> dict[str, str | None]:
    db = sqlite3.connect(db_path)
    try:
        return dict(db.execute("SELECT sha256, split FROM images"))
    finally:
        db.close()


def _refused_by_every_command(fx, ws: Path, tmp_path: Path, *words: str) -> None:
    for args in (("stats", ws), ("split", ws), ("captions", ws),
                 ("export", ws, tmp_path / "out"), ("ingest", ws, tmp_path / "src")):
        fx.one_error_line(fx.run_cli(*args), str(ws / "catalog.sqlite"), *words)


def test_corrupted_page_is_refused_in_one_line_and_doctor_rebuilds(ws, tmp_path, fx):
    before = fx.catalog_rows(ws / "catalog.sqlite")
    splits = _splits(ws / "catalog.sqlite")
    files = fx.content_files(ws)
    db_file = ws / "catalog.sqlite"
    pages = db_file.stat().st_size // 4096
    assert pages >= 6
    with open(db_file, "r+b") as f:  # dd … seek=3 count=2 conv=notrunc
        f.seek(3 * 4096)
        f.write(bytes(range(256)) * 32)

    _refused_by_every_command(fx, ws, tmp_path, "damaged", f"craftlora doctor {ws}")
    fx.one_error_line(fx.run_cli("doctor", ws), "damaged")

    r = fx.run_cli("doctor", ws, "--rebuild", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["added"] == N and out["from_records"] == N and out["problems"] == []
    assert Path(out["moved_aside"]).is_file()  # the damaged file is kept, never deleted
    assert fx.catalog_rows(db_file) == before  # same images, sources, sets, attributes
    assert fx.content_files(ws) == files
    after = _splits(db_file)
    assert set(after) == set(splits)  # splits salvaged where the damaged file still read them
    assert sum(after[s] == splits[s] for s in splits) == out["salvaged_rows"] > 0
    r = fx.run_cli("doctor", ws, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"], r.output


@pytest.mark.parametrize("keep", [0, 0.5], ids=["empty", "truncated"])
def test_empty_or_truncated_catalog_is_refused_then_rebuilt(ws, tmp_path, fx, keep):
    before = fx.catalog_rows(ws / "catalog.sqlite")
    db_file = ws / "catalog.sqlite"
    with open(db_file, "r+b") as f:
        f.truncate(int(db_file.stat().st_size * keep))
    # a 0-byte catalog is never silently a new empty one while images/ holds files
    _refused_by_every_command(fx, ws, tmp_path, "--rebuild")
    assert fx.run_cli("doctor", ws).exit_code == 1

    r = fx.run_cli("doctor", ws, "--rebuild", "--json")
    assert r.exit_code == 0, r.output
    assert fx.catalog_rows(db_file) == before
    r = fx.run_cli("ingest", ws, tmp_path / "src", "--json")  # a rerun adds nothing twice
    assert r.exit_code == 0 and json.loads(r.stdout)["already_present"] == N, r.output


def test_read_only_workspace_reads_but_refuses_writes_in_one_line(ws, tmp_path, fx):
    before = fx.catalog_rows(ws / "catalog.sqlite")
    with fx.read_only_view(ws, tmp_path / "ro") as ro:
        r = fx.run_cli("stats", ro, "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["images"] == N and json.loads(r.stdout)["charts"] is None
        r = fx.run_cli("export", ro, tmp_path / "exported", "--format", "csv", "--json")
        assert r.exit_code == 0 and json.loads(r.stdout)["exported"] == N, r.output
        for args in (("split", ro, "--reset"), ("captions", ro), ("ingest", ro, tmp_path / "src")):
            fx.one_error_line(fx.run_cli(*args), "read-only")
        fx.one_error_line(fx.run_cli("stats", ro, "--out", ro / "charts"), "cannot write")
    assert fx.catalog_rows(ws / "catalog.sqlite") == before


def test_export_into_the_workspace_is_refused(ws, tmp_path, fx):
    files = fx.content_files(ws)
    for target in (ws / "images", ws, ws / "reports" / "x"):
        fx.one_error_line(fx.run_cli("export", ws, target), "inside the workspace")
    assert fx.content_files(ws) == files
    (tmp_path / "afile").write_text("")
    fx.one_error_line(fx.run_cli("export", ws, tmp_path / "afile"), "not a folder")


def test_csv_export_guards_formula_cells_and_ingest_reads_them_back(ws, tmp_path, fx):
    hostile = ['=HYPERLINK("http://example.com","x")', "+1+2", "-2+3", "@SUM(A1)", "'=kept"]
    db = sqlite3.connect(ws / "catalog.sqlite")
    ids = [r[0] for r in db.execute("SELECT id FROM images ORDER BY id LIMIT 5")]
    db.executemany("UPDATE images SET caption = ? WHERE id = ?", zip(hostile, ids, strict=True))
    db.commit()
    db.close()
    out = tmp_path / "csv"
    assert fx.run_cli("export", ws, out, "--format", "csv").exit_code == 0
    rows = list(csv.reader((out / "labels.csv").open()))
    cells = [c for row in rows for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    assert {"'" + h for h in hostile} <= set(cells)

    again = tmp_path / "ws2"
    assert fx.run_cli("init", again, "-a", "glaze=a,b").exit_code == 0
    r = fx.run_cli("ingest", again, out, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["ingested"] == N, r.output
    db = sqlite3.connect(again / "catalog.sqlite")
    assert set(hostile) <= {r[0] for r in db.execute("SELECT caption FROM images")}
    db.close()


def test_init_faults_are_one_line(tmp_path, fx):
    (tmp_path / "afile").write_text("")
    fx.one_error_line(fx.run_cli("init", tmp_path / "afile"), "not a folder")
    line = fx.one_error_line(fx.run_cli("init", tmp_path / "w", "-a", "glaze="), "glaze")
    assert "pydantic" not in line and "http" not in line
    fx.one_error_line(fx.run_cli("init", tmp_path / "w", "-a", "glaze=celadon:jade,white",
                                 "--template", "{glaze} glaze with {glaze.phrase}"),
                      "['white'] have no phrase")
    assert not (tmp_path / "w").exists()
    assert fx.run_cli("init", tmp_path / "w", "-a", "glaze=white").exit_code == 0
    fx.one_error_line(fx.run_cli("init", tmp_path / "w"), "already exists")
    fx.one_error_line(fx.run_cli("init", tmp_path / "v", "--from", tmp_path / "nope.toml"),
                      "nope.toml")


def test_export_onto_a_full_disk_stops_in_one_line_without_half_files(ws, tmp_path, fx):
    with fx.mounted(tmp_path / "disk", "size=12k") as disk:
        fx.one_error_line(fx.run_cli("export", ws, disk / "out"), "out")
        copies = {p.name: p.read_bytes() for p in (ws / "images").rglob("*.png")}
        left = [p for p in (disk / "out").rglob("*") if p.is_file()]
        assert all(copies.get(p.name) == p.read_bytes() for p in left if p.suffix == ".png")
        assert not [p for p in left if p.name.startswith(".tmp-")]


def test_rebuild_takes_any_image_with_a_record_and_refuses_a_damaged_copy(ws, tmp_path, fx):
    made = ws / "synthetic" / "s" / "e0-s1.png"
    fx.write_pngs(tmp_path / "gen", 1, seed=5)
    made.parent.mkdir(parents=True)
    made.write_bytes((tmp_path / "gen" / "000.png").read_bytes())
    row = {"sha256": sha256_bytes(made.read_bytes()), "path": "synthetic/s/e0-s1.png",
           "width": 8, "height": 8, "origin": "synthetic", "set_name": "s", "split": "train",
           "source": "", "provenance": {"seed": 1}, "attributes": {"glaze": "b"}}
    write_record(made, row)  # what a generating stage does before its row commits
    with Catalog(ws / "catalog.sqlite") as cat:
        cat.add_image(**row)
    before = fx.catalog_rows(ws / "catalog.sqlite")
    damaged = sorted((ws / "images").rglob("*.png"))[0]
    good = damaged.read_bytes()
    (ws / "catalog.sqlite").write_bytes(b"")
    damaged.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))

    r = fx.run_cli("doctor", ws, "--rebuild", "--json")
    line = fx.one_error_line(r, "1 file(s) not added", damaged.name)
    assert "does not match" in line
    assert fx.catalog_rows(ws / "catalog.sqlite") == [b for b in before if b[3] != str(
        damaged.relative_to(ws).as_posix())]
    damaged.write_bytes(good)
    r = fx.run_cli("doctor", ws, "--rebuild", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["added"] == 1, r.output
    assert fx.catalog_rows(ws / "catalog.sqlite") == before
