"""The workspace as the studio's server threads see it: one catalog connection per thread
(SQLite connections stay in their thread), one connection for the studio tables."""

from __future__ import annotations

import threading
from pathlib import Path

from craftlora.catalog.store import Catalog
from craftlora.catalog.studio_tables import StudioTables
from craftlora.catalog.workspace import Workspace
from craftlora.config import CATALOG_NAME, WorkspaceConfig


class StudioContext:
    def __init__(self, root: str | Path):
        with Workspace.open(root) as ws:  # validates the folder and its config once
            self.root = Path(ws.root).resolve()
            self.config: WorkspaceConfig = ws.config
        self.tables = StudioTables(self.root / CATALOG_NAME)
        self._local = threading.local()

    @property
    def catalog(self) -> Catalog:
        """This thread's connection to the catalog."""
        cat = getattr(self._local, "catalog", None)
        if cat is None:
            cat = self._local.catalog = Catalog(self.root / CATALOG_NAME)
        return cat

    def workspace(self) -> Workspace:
        """A Workspace view for stage functions (shares this thread's catalog connection)."""
        return Workspace(root=self.root, config=self.config, catalog=self.catalog)

    def close(self) -> None:
        self.tables.close()
