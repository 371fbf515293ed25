"""`craftlora demo --samples` (the data-foundation demo) on the shipped samples/ folder."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from craftlora.cli.main import app


def test_demo_on_samples_shows_every_rejection_and_is_rerunnable(tmp_path):
    out = tmp_path / "demo"
    r = CliRunner().invoke(app, ["demo", "--samples", "--out", str(out), "--quick"])
    assert r.exit_code == 0, r.output
    assert "data-foundation demo only" in r.output
    result = json.loads((out / "demo.json").read_text())
    ing = result["ingest"]
    assert ing["ingested"] == 34
    reasons = " | ".join(x["reason"] for x in ing["rejected"])
    for kind in ("empty file", "truncated", "not an image", "decompression bomb",
                 "symlink leads outside SOURCE", "exact duplicate", "is not allowed"):
        assert kind in reasons
    assert {p["line"] for p in ing["label_problems"]} == {13, 21, 44}
    assert result["split"]["counts"]["train"] + result["split"]["counts"]["val"] + result[
        "split"]["counts"]["test"] == 34
    assert result["stats"]["observed_combinations"] == 9
    assert result["captions"]["written"] == 34
    assert (out / "stats" / "lorenz.png").is_file()

    again = CliRunner().invoke(app, ["demo", "--samples", "--out", str(out)])
    assert again.exit_code == 0, again.output
    result2 = json.loads((out / "demo.json").read_text())
    assert result2["ingest"]["ingested"] == 0 and result2["ingest"]["already_present"] == 34
    assert result2["split"]["assigned"] == 0
