"""Catalog names of files: readable text that leads back to the exact bytes on disk."""

from __future__ import annotations

import os

import pytest

from craftlora.catalog.names import fs_name, readable_name


@pytest.mark.parametrize("raw,shown", [
    (b"plain.png", "plain.png"),
    ("青花 vase.PNG".encode(), "青花 vase.PNG"),
    (b"caf\xe9 \xff.png", "caf\\xe9 \\xff.png"),
    (b"back\\slash\\x41.png", "back\\\\slash\\\\x41.png"),
    (b"\xe9\\x41", "\\xe9\\\\x41"),
    (b"half \xe6\x97.png", "half \\xe6\\x97.png"),  # a cut multi-byte character
])
def test_readable_name_is_text_and_lossless(raw, shown):
    name = os.fsdecode(raw)
    assert readable_name(name) == shown
    shown.encode("utf-8")  # storable in SQLite, JSON and a terminal
    assert os.fsencode(fs_name(shown)) == raw
