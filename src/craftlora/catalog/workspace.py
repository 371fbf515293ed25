"""A workspace: a folder holding ``craftlora.toml``, ``catalog.sqlite`` and the image files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from craftlora.catalog.ingest_worker import IMAGES_DIR
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
from craftlora.data.paths import inside


class WorkspaceError(RuntimeError):
    """The folder is not a workspace, or a path tries to leave it."""


@dataclass
class Workspace:
    root: Path
    config: WorkspaceConfig
    catalog: Catalog

    @classmethod
    def open(cls, root: str | os.PathLike[str], *, write: bool = True) -> Workspace:
        """Open a workspace; its catalog is checked first (see ``Catalog``).

        ``write=False`` is for commands that only read: on a read-only file system they open
        the catalog read-only, where a command that writes gets one line saying so.
        """
        root = Path(root)
        if not (root / CONFIG_NAME).is_file():
            raise WorkspaceError(f"{root}: not a craftlora workspace (no {CONFIG_NAME}); "
                                 "create one with `craftlora init`")
        config = load_config(root / CONFIG_NAME)
        catalog_path = root / CATALOG_NAME
        readonly = not writable(root)
        if readonly and write:
            raise WorkspaceError(f"{root}: workspace is read-only (cannot write {CATALOG_NAME}); "
                                 "only read commands (stats, export to another folder) work")
        expect_catalog(root)
        return cls(root=root, config=config, catalog=Catalog(catalog_path, readonly=readonly))

    @classmethod
    def create(cls, root: str | os.PathLike[str], config: WorkspaceConfig) -> Workspace:
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"{root}: exists and is not a folder; choose a new name")
        if (root / CONFIG_NAME).exists():
            raise WorkspaceError(f"{root / CONFIG_NAME}: already exists; not overwriting")
        if (root / CATALOG_NAME).exists():
            raise WorkspaceError(f"{root / CATALOG_NAME}: already exists; not overwriting")
        try:
            root.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(root / CONFIG_NAME, config_toml(config))
        except OSError as e:
            raise WorkspaceError(f"{root}: cannot create the workspace: "
                                 f"{e.strerror or e}") from e
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


def writable(root: Path) -> bool:
    """False on a read-only file system (or a folder this user may not write)."""
    catalog = root / CATALOG_NAME
    return os.access(root, os.W_OK) and (not catalog.exists() or os.access(catalog, os.W_OK))


def expect_catalog(root: Path) -> None:
    """Refuse a missing or 0-byte catalog when ``images/`` holds files: it was lost, not new."""
    catalog = root / CATALOG_NAME
    if catalog.is_file() and catalog.stat().st_size > 0:
        return
    images = root / IMAGES_DIR
    held = next((p for p in images.rglob("*") if p.is_file()), None) if images.is_dir() else None
    if held is not None:
        state = "is empty (0 bytes)" if catalog.exists() else "is missing"
        raise WorkspaceError(f"{catalog}: catalog {state} but {images} holds image files; "
                             f"run `craftlora doctor {root} --rebuild` to rebuild it from them")


def confine(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """``root / path`` resolved; WorkspaceError if it lies outside ``root`` (symlinks followed)."""
    target = inside(root, path)
    if target is None:
        raise WorkspaceError(f"{path}: path leads outside {root}")
    return target


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
    except ValidationError as e:  # one line: the first fault, without pydantic's URL
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"--attribute {spec!r}: {where}: {err['msg']} "
                          "(expected NAME=v1,v2,...)") from e
