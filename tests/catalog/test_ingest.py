"""Ingest: each bad-input kind is refused with its reason while the rest goes in; reruns."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from craftlora.catalog.ingest import IngestError, ingest
from craftlora.catalog.sources import SourceError


def _reasons(report) -> dict[str, str]:
    return {r["path"]: r["reason"] for r in report.rejected}


def test_every_bad_input_kind_is_refused_and_the_rest_ingested(
    tmp_path, kiln_ws, write_images, image_bytes
):
    src = tmp_path / "src"
    good = write_images(src, ["a.png", "sub dir/b ü.PNG", "c.JPG", "dup-of-a.png"])
    (src / "dup-of-a.png").write_bytes(good["a.png"])  # exact duplicate of a.png
    (src / "empty.png").write_bytes(b"")
    png, jpg = image_bytes(1, "PNG", (64, 64)), image_bytes(2, "JPEG", (64, 64))
    (src / "trunc.png").write_bytes(png[: len(png) // 2])
    (src / "trunc.jpg").write_bytes(jpg[: len(jpg) // 2])
    (src / "text.png").write_text("not an image at all\n")
    (src / "bomb.png").write_bytes(image_bytes(3, "PNG", (200, 100)))  # 20,000 px > 10,000
    outside = tmp_path / "outside"
    write_images(outside, ["o.png"], start_seed=50)
    os.symlink(outside / "o.png", src / "link.png")
    os.symlink(outside, src / "linked-dir")
    write_images(src, ["ming.png"], start_seed=60)
    names = ["a.png", "sub dir/b ü.PNG", "c.JPG", "dup-of-a.png", "empty.png", "trunc.png",
             "trunc.jpg", "text.png", "bomb.png", "link.png", "ming.png"]
    rows = [f"{n},white,bowl" for n in names]
    rows[-1] = "ming.png,ming,bowl"  # value the config does not allow
    lines = ["file,glaze,type,colour", *rows,
             "missing.png,white,bowl,",  # line 13: file not there
             "a.png,white",  # line 14: malformed
             "../outside/o.png,white,bowl,"]  # line 15: leaves SOURCE
    (src / "labels.csv").write_text("\n".join(lines) + "\n")
    # the unknown column makes every data row one field longer: give them the 4th field
    text = (src / "labels.csv").read_text().splitlines()
    text[1:12] = [t + "," for t in text[1:12]]
    (src / "labels.csv").write_text("\n".join(text) + "\n")

    report = ingest(kiln_ws, src, progress=False, workers=2)
    reasons = _reasons(report)
    assert report.ingested == 3
    assert reasons["empty.png"] == "empty file"
    assert "truncated" in reasons["trunc.png"]
    assert "truncated" in reasons["trunc.jpg"]
    assert "not an image" in reasons["text.png"]
    assert reasons["bomb.png"].startswith("decompression bomb") and "10000" in reasons["bomb.png"]
    assert reasons["link.png"].startswith("symlink leads outside SOURCE")
    assert reasons["linked-dir"].startswith("symlink leads outside SOURCE")
    assert reasons["dup-of-a.png"].startswith("exact duplicate of a.png")
    assert reasons["ming.png"] == ("labels.csv:12: glaze='ming' is not allowed "
                                   "(allowed: white, celadon)")
    assert len(reasons) == 9
    problems = {p["line"]: p["reason"] for p in report.label_problems}
    assert set(problems) == {1, 11, 13, 14, 15}
    assert "outside SOURCE" in problems[11]  # the symlink's row
    assert "unknown column 'colour'" in problems[1]
    assert problems[13] == "missing.png: file not found"
    assert problems[14].startswith("malformed row")
    assert "outside SOURCE" in problems[15]
    assert all(p["file"] == "labels.csv" for p in report.label_problems)

    recs = kiln_ws.catalog.images()
    assert sorted(r.source for r in recs) == ["a.png", "c.JPG", "sub dir/b ü.PNG"]
    for r in recs:
        data = (src / r.source).read_bytes()
        copy = kiln_ws.resolve(r.path).read_bytes()
        assert copy == data  # copied untouched
        assert r.sha256 == hashlib.sha256(data).hexdigest()
        assert r.path.startswith("images/") and r.attributes == {"glaze": "white", "type": "bowl"}
        assert (r.width, r.height) == (12, 10)
    json.dumps(report.to_json())


def test_rerun_ingests_nothing_twice(tmp_path, kiln_ws, write_images):
    src = tmp_path / "src"
    write_images(src, [f"d{i // 4}/img {i}.png" for i in range(12)])
    first = ingest(kiln_ws, src, progress=False, workers=2)
    files = sorted(p for p in (kiln_ws.root / "images").rglob("*") if p.is_file())
    again = ingest(kiln_ws, src, progress=False, workers=2)
    assert (first.ingested, again.ingested, again.already_present) == (12, 0, 12)
    assert again.rejected == []
    assert kiln_ws.catalog.count() == 12
    assert sorted(p for p in (kiln_ws.root / "images").rglob("*") if p.is_file()) == files
    # a new file among old ones: only it goes in
    write_images(src, ["new.png"], start_seed=100)
    third = ingest(kiln_ws, src, progress=False, workers=1)
    assert (third.ingested, third.already_present) == (1, 12)
    # the same content from another folder is a duplicate, not a second image
    other = tmp_path / "other"
    other.mkdir()
    (other / "copy.png").write_bytes((src / "new.png").read_bytes())
    dup = ingest(kiln_ws, other, progress=False)
    assert dup.ingested == 0 and "already in the catalog" in dup.rejected[0]["reason"]
    assert kiln_ws.catalog.count() == 13


def test_kohya_captions_and_annotation_sidecars(tmp_path, kiln_ws, write_images):
    src = tmp_path / "10_vessels"
    write_images(src, ["a.png", "b.png", "c.png"])
    (src / "a.txt").write_text("a white bowl, museum photo\n")
    ann = {"description": "A bowl.",
           "objects": [{"name": "rim", "description": "thin", "position": ["top"]}]}
    (src / "a.json").write_text(json.dumps(ann))
    (src / "b.json").write_text(json.dumps({"description": "no objects key"}))
    report = ingest(kiln_ws, src, progress=False)
    assert report.ingested == 3 and report.captions_read == 1 and report.annotations_read == 1
    by_source = {r.source: r for r in kiln_ws.catalog.images()}
    assert by_source["a.png"].caption == "a white bowl, museum photo"
    assert by_source["a.png"].annotation == ann
    assert by_source["b.png"].annotation is None
    (problem,) = report.sidecar_problems
    assert problem["path"] == "b.png" and "objects" in problem["reason"]


def test_hf_imagefolder_metadata_in_subfolders(tmp_path, kiln_ws, write_images):
    src = tmp_path / "hf"
    write_images(src, ["train/x.png", "train/y.png", "test/z.png"])
    (src / "train" / "metadata.jsonl").write_text(
        '{"file_name": "x.png", "glaze": "celadon", "type": "vase", "text": "a vase"}\n'
        '{"file_name": "y.png", "glaze": "white", "type": "bowl"}\n'
    )
    (src / "test" / "metadata.jsonl").write_text('{"file_name": "z.png", "glaze": "white"}\n'
                                                 "{not json\n")
    report = ingest(kiln_ws, src, progress=False)
    assert report.ingested == 3
    recs = {r.source: r for r in kiln_ws.catalog.images()}
    assert recs["train/x.png"].attributes == {"glaze": "celadon", "type": "vase"}
    assert recs["train/x.png"].caption == "a vase"
    assert recs["test/z.png"].attributes == {"glaze": "white"}
    assert report.label_problems == [{"file": "test/metadata.jsonl", "line": 2,
                                      "reason": report.label_problems[0]["reason"]}]
    assert report.label_problems[0]["reason"].startswith("malformed row: not JSON")


def test_unlisted_images_are_refused_when_labels_exist(tmp_path, kiln_ws, write_images):
    src = tmp_path / "src"
    write_images(src, ["a.png", "b.png"])
    labels = tmp_path / "elsewhere.csv"
    (src / "scan.heic").write_bytes(b"x")
    labels.write_text("file,glaze\na.png,celadon\nscan.heic,white\n")
    report = ingest(kiln_ws, src, labels=labels, progress=False)
    assert report.ingested == 1
    assert _reasons(report)["b.png"].startswith("not listed in the labels file")
    (problem,) = report.label_problems
    assert problem["line"] == 3 and problem["reason"].startswith("scan.heic: not an image file")


def test_synthetic_set(tmp_path, kiln_ws, write_images):
    src = tmp_path / "oracle"
    write_images(src, ["s1.png", "s2.png"], start_seed=200)
    report = ingest(kiln_ws, src, origin="synthetic", set_name="oracle",
                    provenance={"generator": "renderer"}, progress=False)
    assert report.ingested == 2
    recs = kiln_ws.catalog.images(set_name="oracle")
    assert {(r.origin, r.split) for r in recs} == {("synthetic", "train")}
    assert recs[0].provenance["generator"] == "renderer"
    assert kiln_ws.catalog.sets() == {"oracle": 2}


def test_unusable_source_raises(tmp_path, kiln_ws, write_images):
    with pytest.raises(IngestError, match="not found"):
        ingest(kiln_ws, tmp_path / "nope", progress=False)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(IngestError, match="not a folder"):
        ingest(kiln_ws, tmp_path / "f.txt", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="no image files"):
        ingest(kiln_ws, tmp_path / "empty", progress=False)
    write_images(tmp_path / "src", ["a.png"])
    (tmp_path / "src" / "labels.csv").write_text("name,glaze\na.png,white\n")
    with pytest.raises(SourceError, match="labels.csv: line 1: no 'file'"):
        ingest(kiln_ws, tmp_path / "src", progress=False)
    with pytest.raises(SourceError, match="labels file not found"):
        ingest(kiln_ws, tmp_path / "src", labels=tmp_path / "missing.csv", progress=False)
    assert kiln_ws.catalog.count() == 0
