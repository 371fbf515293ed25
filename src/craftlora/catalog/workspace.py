"""A workspace: a folder holding ``craftlora.toml``, ``catalog.sqlite`` and the image files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from craftlora.catalog.store import Catalog
from craftlora.config import (
    CATALOG_NAME,
    CONFIG_NAME,
    Attribute,
    ConfigError,
    WorkspaceConfig,
    config_toml,
    load_config,
)
from craftlora.data.atomic import atomic_write_bytes


class WorkspaceError(RuntimeError):
    """The folder is not a workspace, or a path tries to leave it."""


@dataclass
class Workspace:
    root: Path
    config: WorkspaceConfig
    catalog: Catalog

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Workspace:
        root = Path(root)
        if not (root / CONFIG_NAME).is_file():
            raise WorkspaceError(f"{root}: not a craftlora workspace (no {CONFIG_NAME}); "
                                 "create one with `craftlora init`")
        config = load_config(root / CONFIG_NAME)
        return cls(root=root, config=config, catalog=Catalog(root / CATALOG_NAME))

    @classmethod
    def create(cls, root: str | os.PathLike[str], config: WorkspaceConfig) -> Workspace:
        root = Path(root)
        if (root / CONFIG_NAME).exists():
            raise WorkspaceError(f"{root / CONFIG_NAME}: already exists; not overwriting")
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(root / CONFIG_NAME, config_toml(config))
        return cls(root=root, config=config, catalog=Catalog(root / CATALOG_NAME))

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def save_config(self) -> None:
        atomic_write_bytes(self.root / CONFIG_NAME, config_toml(self.config))

    def resolve(self, relative: str | os.PathLike[str]) -> Path:
        """An absolute path inside the workspace; refuses anything that escapes it."""
        return confine(self.root, relative)

    def relative(self, path: str | os.PathLike[str]) -> str:
        """The catalog form of a path inside the workspace (POSIX, relative)."""
        p = confine(self.root, path)
        return p.relative_to(Path(os.path.realpath(self.root))).as_posix()


def confine(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """``root / path`` resolved; WorkspaceError if it lies outside ``root`` (symlinks followed)."""
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(real_root, os.fspath(path)))
    if os.path.commonpath([real_root, target]) != real_root:
        raise WorkspaceError(f"{path}: path leads outside {root}")
    return Path(target)


def parse_attribute_spec(spec: str) -> tuple[str, Attribute]:
    """``NAME=v1,v2,...`` (a value may carry a phrase: ``v1:phrase``) → (name, Attribute)."""
    if "=" not in spec:
        raise ConfigError(f"--attribute {spec!r}: expected NAME=v1,v2,...")
    name, _, rest = spec.partition("=")
    values, phrases = [], {}
    for item in rest.split(","):
        value, _, phrase = item.partition(":")
        value = value.strip()
        if value:
            values.append(value)
            if phrase.strip():
                phrases[value] = phrase.strip()
    try:
        return name.strip(), Attribute(values=values, phrases=phrases)
    except Exception as e:  # pydantic ValidationError: name the attribute
        raise ConfigError(f"--attribute {name.strip()!r}: {e}") from e
