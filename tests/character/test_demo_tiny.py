"""`craftlora demo character` end to end on the tiny preset (slow: about a minute on 2 cores)."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from craftlora.demo.character import PRESETS, run_character_demo


@pytest.mark.slow
def test_tiny_demo_writes_character_json_and_resumes(tmp_path):
    out = tmp_path / "demo"
    first = run_character_demo(out, PRESETS["tiny"], Console(quiet=True))
    saved = json.loads((out / "character.json").read_text())
    for key in ("candidates", "kept", "tags_per_image", "identity", "tag_adherence",
                "diversity", "wall_s"):
        assert key in saved
    assert saved["candidates"] == 24 and 0 < saved["kept"] < 24
    assert saved["identity"]["ceiling"] == 1.0
    assert set(saved["identity"]) >= {"base", "lora", "ceiling"}
    assert (out / "character.html").is_file() and (out / "tags.png").is_file()
    assert (out / "kohya" / "img" / "1_pip").is_dir()
    again = run_character_demo(out, PRESETS["tiny"], Console(quiet=True))  # all resumed
    assert again["kept"] == first["kept"] and again["identity"] == first["identity"]
