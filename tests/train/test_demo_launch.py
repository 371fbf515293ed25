"""The demo's multi-process LoRA launch: child output in train.log, clear errors."""

from __future__ import annotations

import json

import pytest

from craftlora.train.launch import launch_cpu as _launch
from craftlora.train.launch import logged_step as _logged_step


def test_logged_step_reads_the_last_complete_line(tmp_path):
    log = tmp_path / "log.jsonl"
    assert _logged_step(log) == 0
    log.write_text("".join(json.dumps({"step": s, "loss": 0.1}) + "\n" for s in (10, 20))
                   + '{"step": 3', encoding="utf-8")  # a line still being written
    assert _logged_step(log) == 20


def test_two_processes_train_and_their_output_goes_to_train_log(
        tiny_model_dir, tiny_workspace, tmp_path, train_helpers):
    # the config lies outside its output_dir: the run is still read from output_dir
    (tmp_path / "cfg").mkdir()
    run = tmp_path / "run"
    toml = train_helpers.write_config(tmp_path / "cfg" / "train.toml", tiny_model_dir,
                                      tiny_workspace, run, max_steps=2, log_every=1)
    res = _launch(toml, run, 2, None, total=2, progress=False)
    assert res["status"] == "finished" and res["processes"] == 2 and res["step"] == 2
    assert _logged_step(run / "log.jsonl") == 2
    assert (run / "train.log").stat().st_size > 0  # the children's output, not ours


def test_a_failed_launch_names_the_log_and_quotes_the_childs_error(tmp_path, train_helpers,
                                                                   tiny_model_dir):
    toml = train_helpers.write_config(tmp_path / "train.toml", tiny_model_dir,
                                      tmp_path / "no-such-workspace", tmp_path, max_steps=2)
    with pytest.raises(RuntimeError) as err:
        _launch(toml, tmp_path, 2, None, total=2, progress=False)
    msg = str(err.value)
    assert str(tmp_path / "train.log") in msg
    assert "error:" in msg and "no-such-workspace" in msg  # from the log, not the traceback
