"""Fixtures for the trainer tests: a tiny saved model and a small captioned workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_train import build_workspace, make_image, write_config

from craftlora.models.tiny import TinySpec, save_tiny_pipeline


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tinymodel")
    return save_tiny_pipeline(TinySpec(), root / "model", seed=0,
                              corpus=["a red vase", "a blue bowl", "a green vase"])


@pytest.fixture
def tiny_workspace(tmp_path) -> Path:
    return build_workspace(tmp_path / "ws")


@pytest.fixture
def train_helpers():
    """The plain helper functions (pytest's importlib mode cannot import conftest directly)."""
    from types import SimpleNamespace

    return SimpleNamespace(build_workspace=build_workspace, make_image=make_image,
                           write_config=write_config)
