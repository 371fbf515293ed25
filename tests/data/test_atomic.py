"""Atomic writes: whole content, a normal file mode, and orphan temps cleaned."""

from __future__ import annotations

import stat

from craftlora.data.atomic import TMP_PREFIX, atomic_write_json, remove_orphan_temps


def test_atomic_write_gives_the_mode_of_a_plain_write(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    target = tmp_path / "sub" / "a.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert target.read_text() == '{\n  "a": 2\n}\n'
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_orphan_temps_are_removed(tmp_path):
    (tmp_path / f"{TMP_PREFIX}abc").write_bytes(b"half")
    (tmp_path / "keep.png").write_bytes(b"whole")
    assert remove_orphan_temps(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]
