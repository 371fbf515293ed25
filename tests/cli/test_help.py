"""Every command's ``--help`` renders, keeps its bracketed names and sits in a loop panel."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from craftlora.cli.app import PANELS
from craftlora.cli.main import app

# "[tiers]", "[qc]", "<lora:NAME:w>": names a markup language could take for its own syntax
BRACKETED = re.compile(r"\[[A-Za-z_.\-]+\]|<[A-Za-z_:.]+>")
WIDE = {"COLUMNS": "160", "TERM": "dumb", "NO_COLOR": "1"}


def _commands(cmd, path=()):
    """(path, click command) for the root, every command and every group's commands."""
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


ROOT = typer.main.get_command(app)
ALL = list(_commands(ROOT))


def _flat(text: str) -> str:
    """Rendered help without box drawing, on one line: wrapped phrases read whole again."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_the_walk_sees_groups_and_their_commands():
    names = {" ".join(p) for p, _ in ALL}
    assert {"plan", "generate", "qc", "train", "init", "ingest", "demo"} <= names
    assert {"experiment run", "metrics fd", "classify train", "mini kiln"} <= names


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=lambda p: " ".join(p) or "root")
def test_help_renders_and_keeps_bracketed_names(path):
    cmd = dict(ALL)[path]
    r = CliRunner().invoke(app, [*path, "--help"], env=WIDE)
    assert r.exit_code == 0, r.output
    shown = _flat(r.output)
    texts = [cmd.help or ""] + [getattr(p, "help", None) or "" for p in cmd.params]
    for name in {m for t in texts for m in BRACKETED.findall(t)}:
        assert name in shown, f"{' '.join(path)} --help lost {name}"
    assert "error" not in shown.lower().split()[:3]


def test_bracketed_names_of_plan_and_qc_survive():
    plan = _flat(CliRunner().invoke(app, ["plan", "--help"], env=WIDE).output)
    for name in ("[tiers]", "[dual]", "[prompt]", "[generation]"):
        assert name in plan
    assert "planner TOML: [tiers] targets, [dual], [prompt]" in plan
    assert "[qc]" in _flat(CliRunner().invoke(app, ["qc", "--help"], env=WIDE).output)
    assert "<lora:NAME:w>" in _flat(
        CliRunner().invoke(app, ["generate", "--help"], env=WIDE).output
    )


def test_every_command_sits_in_a_loop_panel_in_order():
    panels = {n: getattr(c, "rich_help_panel", None) for n, c in ROOT.commands.items()}
    assert {n: p for n, p in panels.items() if p not in PANELS} == {}
    assert PANELS == ("Workspace", "Data", "Train", "Generate", "Check", "Measure", "Worlds")
    out = CliRunner().invoke(app, ["--help"], env=WIDE).output
    titles = re.findall(r"╭─ (\w+) ─", out)
    assert titles[0] == "Options"
    used = [p for p in PANELS if p in panels.values()]
    assert titles[1:] == used
    # each panel lists its own commands: init under Workspace, plan under Generate ...
    blocks = dict(zip(titles, re.split(r"╭─ \w+ ─[^\n]*\n", out)[1:], strict=True))
    for name, panel in panels.items():
        assert re.search(rf"│ {re.escape(name)}\s", blocks[panel]), (name, panel)


def test_presets_are_shown_in_help():
    plan = _flat(CliRunner().invoke(app, ["plan", "--help"], env=WIDE).output)
    assert "mini: DDIM, CFG 1.75" in plan and "SD 1.5: DPM++ 2M Karras, CFG 7" in plan
