"""The character spec: one schema with ingest, errors naming the JSON path; the trigger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from craftlora.catalog.workspace import Workspace
from craftlora.character.spec import CharacterError, init_character, load_character
from craftlora.mini.character.world import SPEC


def _write(tmp_path: Path, obj) -> Path:
    p = tmp_path / "character.json"
    p.write_text(json.dumps(obj))
    return p


def test_init_stores_spec_and_trigger_and_makes_a_workspace(tmp_path):
    meta = init_character(tmp_path / "ws", _write(tmp_path, SPEC), "pip")
    assert meta["objects"] == len(SPEC["objects"])
    spec, trigger = load_character(tmp_path / "ws")
    assert spec == SPEC and trigger == "pip"
    with Workspace.open(tmp_path / "ws") as ws:
        assert "pose" in ws.config.attributes
        assert ws.config.qc.optional_checks == ["text_overlay", "distortion"]


@pytest.mark.parametrize(("broken", "where"), [
    ({"objects": []}, "(top level)"),  # description missing
    ({**SPEC, "objects": [{"name": "bow", "description": "red"}]}, "objects/0"),
    ({**SPEC, "objects": [{"name": "bow", "description": "red", "position": []}]},
     "objects/0/position"),
    ({**SPEC, "objects": [{"name": "", "description": "red", "position": "left"}]},
     "objects/0/name"),
    ({**SPEC, "colour": "red"}, "(top level)"),
])
def test_spec_errors_name_the_file_and_json_path(tmp_path, broken, where):
    path = _write(tmp_path, broken)
    with pytest.raises(CharacterError) as e:
        init_character(tmp_path / "ws", path, "pip")
    assert str(path) in str(e.value) and f"{where}:" in str(e.value)
    assert not (tmp_path / "ws").exists()  # nothing made from a bad spec


def test_not_json_and_bad_trigger_are_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(CharacterError, match="not readable JSON"):
        init_character(tmp_path / "ws", bad, "pip")
    with pytest.raises(CharacterError, match="trigger"):
        init_character(tmp_path / "ws", _write(tmp_path, SPEC), "Pip, the mascot")


def test_load_without_init_says_what_to_run(tmp_path):
    with pytest.raises(CharacterError, match="character init"):
        load_character(tmp_path)
