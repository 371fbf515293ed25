"""`craftlora qc` and `craftlora metrics fd` on a small workspace, JSON output."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from craftlora.cli.main import app


def test_qc_cli_json_and_rerun(qc_workspace):
    ws = qc_workspace(n_real=20, n_syn=4)
    root = str(ws.root)
    ws.close()
    r = CliRunner().invoke(app, ["qc", root, "--set", "syn", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["n"] == 4 and out["checked_now"]["decode"] == 4
    again = json.loads(CliRunner().invoke(app, ["qc", root, "--set", "syn", "--json"]).stdout)
    assert again["checked_now"]["decode"] == 0 and again["passed_all"] == out["passed_all"]
    bad = CliRunner().invoke(app, ["qc", root, "--set", "missing"])
    assert bad.exit_code == 2 and "has no images" in bad.output


def test_metrics_fd_cli_halves_and_sets(qc_workspace):
    ws = qc_workspace(n_real=20, n_syn=6)
    root = str(ws.root)
    ws.close()
    r = CliRunner().invoke(app, ["metrics", "fd", root, "real", "real", "--extractor", "pixels",
                                 "--json"])
    assert r.exit_code == 0, r.output
    halves = json.loads(r.stdout)
    assert halves["halves"] and halves["n1"] == 10 and halves["extractor"] == "pixels16"
    r = CliRunner().invoke(app, ["metrics", "fd", root, "real", "syn", "--extractor", "pixels",
                                 "--json"])
    out = json.loads(r.stdout)
    assert not out["halves"] and (out["n1"], out["n2"]) == (20, 6) and "kid" in out
    r = CliRunner().invoke(app, ["metrics", "fd", root, "real", "syn", "--extractor", "domain"])
    assert r.exit_code == 2 and "judge classifier checkpoint" in r.output


def test_specular_keeps_going_past_a_bad_file_and_ends_in_one_error_line(tmp_path):
    from PIL import Image

    good = tmp_path / "good.png"
    Image.new("RGB", (16, 16), (250, 250, 250)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["specular", str(bad), str(good), "--out", str(out), "--json"],
                           env={"COLUMNS": "400"})
    assert r.exit_code == 1
    rows = json.loads(r.stdout)["images"]
    assert "error" in rows[0] and rows[1]["output"] == str(out / "good.png")
    assert (out / "good.png").is_file()
    err = [x for x in r.stderr.splitlines() if x.strip()]
    assert err == [f"error: 1 of 2 images not processed, e.g. {bad}: {rows[0]['error']}"]
