"""Import a file of the top-level ``recipes/`` folder (not a package, outside the library)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def load_recipe(name: str) -> ModuleType:
    """``recipes/<name>.py`` as a module (loaded once per test session)."""
    key = f"recipes_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, RECIPES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]
