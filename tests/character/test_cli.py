"""`craftlora character`: one error line naming the file and JSON path; init → prompts."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.generate.plan_model import load_plan
from craftlora.mini.character.world import SPEC

runner = CliRunner()


def test_bad_spec_is_one_error_line_and_nothing_is_made(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({**SPEC, "objects": [{"name": "bow", "position": "left"}]}))
    r = runner.invoke(app, ["character", "init", str(tmp_path / "ws"), "--spec", str(bad),
                            "--trigger", "pip"])
    assert r.exit_code == 2
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert lines[0].startswith("error:") and "objects/0" in r.output and "c.json" in r.output
    assert not (tmp_path / "ws").exists()


def test_init_then_prompts_writes_an_editable_plan(tmp_path):
    spec = tmp_path / "c.json"
    spec.write_text(json.dumps(SPEC))
    ws = tmp_path / "ws"
    r = runner.invoke(app, ["character", "init", str(ws), "--spec", str(spec), "--trigger",
                            "pip"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["character", "prompts", str(ws), "--candidates", "10",
                            "--eval-prompts", "2", "--per-prompt", "3"])
    assert r.exit_code == 0, r.output
    plan = load_plan(ws / "character" / "prompts.toml")
    assert plan.get_set("candidates").total == 10 and plan.get_set("eval-lora").total == 6
    r = runner.invoke(app, ["character", "eval", str(ws)])
    assert r.exit_code == 2 and "eval-base" in r.output  # nothing generated yet: says what
