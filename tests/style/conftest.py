"""A small stitch world shared by the style tests."""

import pytest

from craftlora.mini.stitch.render import render_stitch


@pytest.fixture(scope="session")
def stitch_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("stitch") / "w"
    render_stitch(root, per_motif=1, seed=0, size=32)
    return root
