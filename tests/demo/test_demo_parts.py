"""Fast checks of the demo's parts: step resume, presets, shares, missing ControlNet."""

from __future__ import annotations

import pytest
from rich.console import Console

from craftlora.demo.run import DemoError, _settings_file
from craftlora.demo.settings import DEMO_CAPTION_TEMPLATE, preset
from craftlora.mini.sketch import find_controlnet
from craftlora.runtime.steps import StepRunner


def test_a_finished_step_is_not_run_again(tmp_path):
    calls = []

    def work():
        calls.append(1)
        return {"answer": 42}

    first = StepRunner(tmp_path, Console(quiet=True))
    assert first.run("s", "step", work) == {"answer": 42}
    again = StepRunner(tmp_path, Console(quiet=True))
    assert again.run("s", "step", work) == {"answer": 42}
    assert len(calls) == 1
    assert again.resumed == ["s"] and again.walls["s"] == pytest.approx(first.walls["s"])


def test_a_failed_step_leaves_no_record_and_runs_again(tmp_path):
    def boom():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        StepRunner(tmp_path, Console(quiet=True)).run("s", "step", boom)
    assert not (tmp_path / "steps" / "s.json").exists()
    assert StepRunner(tmp_path, Console(quiet=True)).run("s", "step", lambda: {"ok": 1}) == {
        "ok": 1}


def test_presets_shrink_and_unknown_names_fail():
    full, quick = preset("full"), preset("quick")
    assert full.seeds == [0, 1, 2] and len(quick.seeds) == 1
    assert quick.n_real < full.n_real and quick.lora.steps < full.lora.steps
    assert "{glaze}" in DEMO_CAPTION_TEMPLATE and "{type}" in DEMO_CAPTION_TEMPLATE
    with pytest.raises(ValueError, match="unknown demo preset"):
        preset("huge")


def test_an_output_folder_keeps_its_settings(tmp_path):
    _settings_file(tmp_path, preset("quick"))
    _settings_file(tmp_path, preset("quick"))  # same settings: fine
    with pytest.raises(DemoError, match="other settings"):
        _settings_file(tmp_path, preset("full"))


def test_a_missing_controlnet_is_a_reason_not_a_number(tmp_path):
    why = find_controlnet(tmp_path)
    assert isinstance(why, str) and "missing" in why


def test_a_missing_base_model_stops_the_demo_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from craftlora.cli.main import app

    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["demo", "--out", str(out), "--model", str(tmp_path / "nope")])
    assert r.exit_code != 0
    assert "base model" in r.output and "nope" in r.output
    assert not out.exists()
