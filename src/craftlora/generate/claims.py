"""Work claims, so that two ``generate`` runs on one plan share it instead of colliding.

A run claims an image (its id) before making it: a file ``<set folder>/.claims/<id>`` holding
the run's pid, created under an exclusive lock on ``.claims/.lock``. Another run skips ids
claimed by a live process and takes over those of a dead one. Temp files of the set folder
are removed only under the lock and only while no other live run holds a claim, so one run
never deletes another's file in flight. A run releases its claims once the image is in the
catalog (or when it stops).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from craftlora.data.atomic import pid_alive, remove_orphan_temps

CLAIMS_DIR = ".claims"


class Claims:
    """The claims of this process in one set folder."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.dir = self.folder / CLAIMS_DIR
        self.pid = os.getpid()
        self.held: set[str] = set()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the set's claim lock (every read of claims and the catalog that decides one)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def _owner(self, gid: str) -> int | None:
        try:
            pid = int((self.dir / gid).read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid > 0 else None  # an empty file: its writer died mid-write

    def _others_live(self) -> bool:
        for p in self.dir.iterdir():
            if p.name.startswith("."):
                continue
            owner = self._owner(p.name)
            if owner is not None and owner != self.pid and pid_alive(owner):
                return True
        return False

    def clean_orphans(self) -> int:
        """Remove the claims a killed run left (those it finished are never taken over) and,
        unless another live run holds claims, the temp files it left."""
        with self.locked():
            for p in self.dir.iterdir():
                if p.name.startswith("."):
                    continue
                owner = self._owner(p.name)
                if owner is None or not pid_alive(owner):
                    p.unlink(missing_ok=True)
            return 0 if self._others_live() else remove_orphan_temps(self.folder)

    def take(self, gids: Iterable[str], want: int) -> list[str]:
        """Claim up to ``want`` of ``gids`` not held by another live run (hold ``locked()``)."""
        got: list[str] = []
        for gid in gids:
            if len(got) == want:
                break
            owner = self._owner(gid)
            if owner is not None and owner != self.pid and pid_alive(owner):
                continue
            (self.dir / gid).write_text(str(self.pid))
            self.held.add(gid)
            got.append(gid)
        return got

    def release(self, gids: Iterable[str]) -> None:
        for gid in gids:
            if gid in self.held:
                (self.dir / gid).unlink(missing_ok=True)
                self.held.discard(gid)

    def release_all(self) -> None:
        self.release(list(self.held))
