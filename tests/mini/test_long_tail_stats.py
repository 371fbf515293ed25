"""The default mini-kiln set's long tail, measured the way a user would: `craftlora stats`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.config import config_toml
from craftlora.mini.kiln import workspace_config
from craftlora.mini.render import render_kiln

runner = CliRunner()


def _init_args(ws) -> list[str]:
    """``init --from`` the mini-kiln config (attributes, phrases, caption template)."""
    config = ws.parent / "mini-kiln.toml"
    config.write_bytes(config_toml(workspace_config()))
    return ["init", str(ws), "--from", str(config)]


def _stats(tmp_path, n: int) -> dict:
    src = tmp_path / "src"
    labels = render_kiln(src, n=n, seed=0)
    ws = tmp_path / "ws"
    assert runner.invoke(app, _init_args(ws)).exit_code == 0
    res = runner.invoke(app, ["ingest", str(ws), str(src), "--labels", str(labels), "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["stats", str(ws), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_small_set_through_stats(tmp_path):
    stats = _stats(tmp_path, 60)
    assert stats["images"] == 60 and stats["unlabelled"] == 0
    assert sum(c["count"] for c in stats["combinations"]) == 60


@pytest.mark.slow
def test_default_set_long_tail_via_craftlora_stats(tmp_path):
    stats = _stats(tmp_path, 6000)
    counts = [c["count"] for c in stats["combinations"]]
    assert stats["images"] == 6000
    assert stats["observed_combinations"] >= 60
    assert min(counts) in (1, 2)
    assert stats["imbalance_ratio"] >= 50
