from __future__ import annotations

from pathlib import Path

import pytest

from craftlora.mini.render import render_kiln


@pytest.fixture(scope="session")
def mini_kiln_small(tmp_path_factory) -> Path:
    """A 48-image default-law mini-kiln set rendered once per session."""
    out = tmp_path_factory.mktemp("mini_kiln") / "set"
    render_kiln(out, n=48, seed=3, workers=1)
    return out
