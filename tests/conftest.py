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
