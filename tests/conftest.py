"""Fixtures shared across rooms (helpers live in tests/support, on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

import pytest
from glaze_type_world import build


@pytest.fixture
def glaze_type_ws(tmp_path: Path):
    """A tiny workspace: 16×16 PNGs whose colour is the glaze and whose shape is the type."""
    ws = build(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture(autouse=True)
def _own_weights_registry(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Every test sees an empty ``craftlora weights`` registry of its own, never the user's."""
    path = tmp_path_factory.mktemp("weights-registry") / "weights.json"
    monkeypatch.setenv("CRAFTLORA_WEIGHTS", str(path))
