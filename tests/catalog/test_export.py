"""Export formats, and reading an export back with ingest."""

from __future__ import annotations

import csv
import json

import pytest

from craftlora.catalog.captions import write_captions
from craftlora.catalog.export import export
from craftlora.catalog.ingest import ingest
from craftlora.catalog.split import assign_splits
from craftlora.catalog.workspace import Workspace


@pytest.fixture
def filled_ws(tmp_path, kiln_ws, write_images):
    src = tmp_path / "src"
    write_images(src, [f"i{i}.png" for i in range(6)])
    (src / "labels.csv").write_text("file,glaze,type\n" + "".join(
        f"i{i}.png,{'white' if i < 4 else 'celadon'},bowl\n" for i in range(6)))
    assert ingest(kiln_ws, src, progress=False).ingested == 6
    assign_splits(kiln_ws, seed=0)
    write_captions(kiln_ws)
    return kiln_ws


def test_kohya(filled_ws, tmp_path):
    out = tmp_path / "kohya"
    assert export(filled_ws, "kohya", out) == 6
    images = sorted(p for p in out.iterdir() if p.suffix == ".png")
    assert len(images) == 6
    for p in images:
        assert p.with_suffix(".txt").read_text().strip() in {"bowl, white glaze",
                                                             "bowl, celadon glaze"}
    n_train = len(filled_ws.catalog.images(split="train"))
    assert export(filled_ws, "kohya", tmp_path / "k2", split="train") == n_train


def test_imagefolder_by_split(filled_ws, tmp_path):
    out = tmp_path / "hf"
    export(filled_ws, "imagefolder", out)
    total = 0
    for folder in ("train", "validation", "test"):
        lines = (out / folder / "metadata.jsonl").read_text().splitlines()
        for line in lines:
            row = json.loads(line)
            assert (out / folder / row["file_name"]).is_file()
            assert row["type"] == "bowl" and row["text"].startswith("bowl, ")
        total += len(lines)
    assert total == 6
    assert not (out / "unassigned").exists()


def test_csv_round_trip(filled_ws, tmp_path):
    out = tmp_path / "csv"
    assert export(filled_ws, "csv", out) == 6
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert {r["glaze"] for r in rows} == {"white", "celadon"}
    assert all(r["split"] in {"train", "val", "test"} for r in rows)
    with Workspace.create(tmp_path / "ws2", filled_ws.config) as ws2:
        report = ingest(ws2, out, progress=False)
        assert report.ingested == 6 and report.label_problems == []
        assert report.ignored_columns == ["origin", "set", "sha256", "split"]
        a = {r.sha256: (r.attributes, r.caption) for r in filled_ws.catalog.images()}
        b = {r.sha256: (r.attributes, r.caption) for r in ws2.catalog.images()}
        assert a == b


def test_unknown_format(filled_ws, tmp_path):
    with pytest.raises(ValueError, match="kohya"):
        export(filled_ws, "parquet", tmp_path / "x")
