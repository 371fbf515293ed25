"""A small stitch world and a tiny saved model shared by the style tests."""

import pytest
from style_tiny import save_tiny_model

from craftlora.mini.stitch.render import render_stitch


@pytest.fixture(scope="session")
def stitch_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("stitch") / "w"
    render_stitch(root, per_motif=1, seed=0, size=32)
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("stylemodel"))
