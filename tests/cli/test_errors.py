"""A failure no command foresaw ends in one ``error:`` line and exit 2; --debug shows the trace."""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import sqlite3
import subprocess
import sys

import pytest
import torch
from pydantic import ValidationError
from typer.testing import CliRunner

from craftlora.catalog.workspace import Workspace
from craftlora.cli.errors import describe
from craftlora.cli.main import app
from craftlora.config import Attribute, WorkspaceConfig
from craftlora.generate.plan_model import GenerationSettings


@pytest.fixture
def plan_blocked(tmp_path):
    """A workspace that plans fine, and an --out whose parent folder is a regular file."""
    cfg = WorkspaceConfig(
        name="t",
        attributes={"glaze": Attribute(values=["white"]), "type": Attribute(values=["cup"])},
    )
    with Workspace.create(tmp_path / "ws", cfg) as ws:
        ws.catalog.add_image(sha256=hashlib.sha256(b"1").hexdigest(), path="i/1.png", width=8,
                             height=8, attributes={"glaze": "white", "type": "cup"})
    (tmp_path / "afile").write_text("not a folder")
    return ["plan", str(tmp_path / "ws"), "--out", str(tmp_path / "afile" / "plan.toml")]


def _lines(text: str) -> list[str]:
    return [x for x in text.splitlines() if x.strip()]


def test_unforeseen_os_error_is_one_line_and_exit_2(plan_blocked):
    r = CliRunner().invoke(app, plan_blocked, env={"COLUMNS": "300"})
    assert r.exit_code == 2, r.output
    assert not isinstance(r.exception, OSError)
    err = _lines(r.stderr)
    assert len(err) == 1, r.stderr
    assert err[0].startswith("error: ") and "afile: already exists" in err[0]
    assert "rerun with --debug" in err[0] and "Traceback" not in r.output


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_lets_the_exception_through(plan_blocked, how):
    args = ["--debug", *plan_blocked] if how == "flag" else plan_blocked
    env = {"CRAFTLORA_DEBUG": "1"} if how == "env" else {}
    r = CliRunner().invoke(app, args, env=env)
    assert r.exit_code == 1 and isinstance(r.exception, OSError)


def test_console_script_prints_one_line_or_the_traceback(plan_blocked):
    cmd = [sys.executable, "-m", "craftlora.cli.main", *plan_blocked]
    env = {**os.environ, "COLUMNS": "300"}
    env.pop("CRAFTLORA_DEBUG", None)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and len(_lines(p.stderr)) == 1 and p.stdout == ""
    p = subprocess.run(cmd[:3] + ["--debug"] + cmd[3:], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 1 and "Traceback" in p.stderr and "FileExistsError" in p.stderr


def test_usage_errors_and_help_keep_click_behaviour(plan_blocked):
    r = CliRunner().invoke(app, ["plan", "--no-such-flag", "ws"])
    assert r.exit_code == 2 and "No such option" in r.output and "rerun with" not in r.output
    assert CliRunner().invoke(app, ["plan", "--help"]).exit_code == 0


def _os_call_pickle() -> bytes:
    """A pickle that would call os.getcwd when unpickled: opcodes written by hand, not by
    pickling anything (GLOBAL 'posix getcwd', empty tuple, REDUCE, STOP)."""
    return b"cposix\ngetcwd\n)R."


def test_describe_real_exceptions(tmp_path):
    with pytest.raises(ValidationError) as e:
        Attribute(values=[])
    text = describe(e.value)
    assert text.startswith("invalid Attribute: values:") and "http" not in text
    assert "\n" not in text
    with pytest.raises(ValidationError) as e:  # a validator's own ValueError, without a prefix
        GenerationSettings(model="org/x")
    assert describe(e.value).startswith("invalid GenerationSettings: value: org/x: cannot tell")

    bad = tmp_path / "catalog.sqlite"
    bad.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(sqlite3.DatabaseError) as e:
        sqlite3.connect(bad).execute("select * from sqlite_master").fetchall()
    assert describe(e.value) == (
        "catalog database: file is not a database: the catalog file is damaged"
    )

    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "ws/images/x.png")
    assert describe(full) == "ws/images/x.png: no space left on device"
    ro = OSError(errno.EROFS, os.strerror(errno.EROFS), "ws/catalog.sqlite")
    assert describe(ro) == "ws/catalog.sqlite: read-only file system"
    with pytest.raises(FileNotFoundError) as e:
        (tmp_path / "nope.toml").read_text()
    assert describe(e.value) == f"{tmp_path / 'nope.toml'}: no such file or directory"

    payload = tmp_path / "rng.pt"
    payload.write_bytes(_os_call_pickle())
    with pytest.raises(pickle.UnpicklingError) as e:
        torch.load(payload, weights_only=True)
    text = describe(e.value)
    assert text.startswith("refused a file that holds more than plain weights (")
    assert text.endswith("(Trying to load unsupported GLOBAL posix.getcwd whose module posix is "
                         "blocked.)") and "False" not in text
    assert describe(KeyError("steps")) == "KeyError: 'steps'"
    assert describe(ValueError("a\n  b")) == "a b"
    long = describe(RuntimeError("x" * 1000))
    assert long.startswith("RuntimeError: xxx") and long.endswith("…") and len(long) == 400
