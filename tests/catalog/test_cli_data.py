"""The data commands through the real CLI: JSON output, exit codes, chart files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from craftlora.cli.main import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_init_ingest_stats_split_captions_export(tmp_path, write_images):
    ws = tmp_path / "ws"
    r = _run("init", ws, "-a", "glaze=white:ivory white,celadon:jade green", "-a", "type=bowl,vase",
             "--template", "{type}, {glaze} glaze, {glaze.phrase}")
    assert r.exit_code == 0, r.output
    src = tmp_path / "src"
    write_images(src, [f"{i}.png" for i in range(5)] + ["bad.png"])
    (src / "bad.png").write_bytes(b"")
    (src / "labels.csv").write_text("file,glaze,type\n" + "".join(
        f"{i}.png,{'celadon' if i else 'white'},vase\n" for i in range(5)) + "bad.png,white,bowl\n")

    r = _run("ingest", ws, src, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["ingested"] == 5
    assert out["rejected"] == [{"path": "bad.png", "reason": "empty file"}]
    assert out["label_problems"] == []

    r = _run("split", ws, "--seed", "1", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"] == {"train": 3, "val": 1, "test": 1}

    r = _run("stats", ws, "--by", "glaze", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["combinations"] == [{"values": {"glaze": "celadon"}, "count": 4},
                                 {"values": {"glaze": "white"}, "count": 1}]
    assert s["imbalance_ratio"] == 4.0 and s["gini"] == 0.3
    assert s["charts"]["long_tail"] == str(ws / "reports" / "stats" / "long_tail.png")
    assert all(Path(p).is_file() for p in s["charts"].values())
    r = _run("stats", ws, "--split", "val", "--json")
    assert json.loads(r.stdout)["images"] == 1

    r = _run("captions", ws, "--json")
    assert json.loads(r.stdout)["example"] == "vase, white glaze, ivory white"

    r = _run("export", ws, tmp_path / "out", "--format", "csv", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["exported"] == 5

    r = _run("ingest", ws, src, "--json")  # rerun: nothing new, still success
    assert r.exit_code == 0 and json.loads(r.stdout)["already_present"] == 5


def test_unusable_source_exits_non_zero_with_a_message(tmp_path, write_images):
    ws = tmp_path / "ws"
    assert _run("init", ws).exit_code == 0
    r = _run("ingest", ws, tmp_path / "missing")
    assert r.exit_code != 0 and "SOURCE not found" in r.output
    r = _run("ingest", tmp_path / "not-a-ws", tmp_path)
    assert r.exit_code != 0 and "not a craftlora workspace" in r.output
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.png").write_bytes(b"")
    r = _run("ingest", ws, src, "--json")  # nothing could be ingested
    assert r.exit_code == 1 and json.loads(r.stdout)["rejected"][0]["reason"] == "empty file"
