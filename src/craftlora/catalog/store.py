"""The workspace catalog: one SQLite file, the truth about every image.

Every write runs inside a transaction, so a killed process leaves the catalog as it was before
the transaction began. The catalog itself refuses a synthetic image in ``val`` or ``test``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from craftlora.catalog.schema import (
    DECISIONS,
    MIGRATIONS,
    ORIGINS,
    SCHEMA_VERSION,
    SPLITS,
    TABLES,
)


def repair_hint(path: Path) -> str:
    """What to do about a damaged catalog at ``path`` (the workspace is its folder)."""
    ws = path.parent
    return (f"run `craftlora doctor {ws}` to check it, `craftlora doctor {ws} --rebuild` to "
            "rebuild it from the image files and their records")


class CatalogError(RuntimeError):
    """The catalog refused a write, or the file is not a craftlora catalog."""


class CatalogIOError(CatalogError):
    """The catalog file could not be written at all: disk full, read-only, damaged, busy."""


@dataclass(frozen=True)
class ImageRecord:
    id: int
    sha256: str
    path: str  # relative to the workspace root, POSIX separators
    width: int
    height: int
    origin: str
    set_name: str
    source: str
    split: str | None
    caption: str | None
    annotation: dict[str, Any] | None
    provenance: dict[str, Any]
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QCResult:
    image_id: int
    check_name: str
    passed: bool
    score: float | None = None
    detail: str = ""
    config: str = ""


class Catalog:
    """A connection to ``catalog.sqlite``; creates and migrates the schema on open.

    Opening checks the file (``PRAGMA quick_check``, the schema) and refuses a damaged one in
    one line that says what to do. ``readonly=True`` opens a catalog on a read-only file system
    (an immutable snapshot: no journal, no writes).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                self._db = _connect_readonly(self.path)
            else:
                self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
            self._check()
            if not readonly:
                self._migrate()
        except sqlite3.DatabaseError as e:
            self._db_close_quietly()
            raise CatalogIOError(describe_db_error(self.path, e)) from e
        except CatalogError:
            self._db_close_quietly()
            raise
        self._depth = 0

    def _db_close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()

    def _check(self) -> None:
        """Refuse a file that SQLite finds damaged, or a catalog whose tables are missing."""
        found = [r[0] for r in self._db.execute("PRAGMA quick_check")]
        if found != ["ok"]:
            first = " ".join(" ".join(found[:2]).split())[:160]  # SQLite's report spans lines
            raise CatalogError(f"{self.path}: catalog is damaged ({first}); "
                               f"{repair_hint(self.path)}")
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        missing = sorted(set(TABLES) - tables)
        if version > 0 and missing:
            raise CatalogError(f"{self.path}: catalog is damaged (tables {missing} missing); "
                               f"{repair_hint(self.path)}")
        if version == 0 and tables:
            raise CatalogError(f"{self.path}: not a craftlora catalog (it holds other tables)")
        if version == 0 and self.readonly:
            raise CatalogError(f"{self.path}: catalog is empty and the workspace is read-only")

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise CatalogError(
                f"{self.path}: schema version {version} is newer than this craftlora "
                f"({SCHEMA_VERSION}); upgrade craftlora"
            )
        for v in range(version, SCHEMA_VERSION):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _statements(MIGRATIONS[v]):
                    self._db.execute(stmt)
                self._db.execute(f"PRAGMA user_version = {v + 1}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def transaction(self) -> Iterator[Catalog]:
        """All writes inside commit together or not at all. Nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._sql("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        else:
            try:
                self._sql("COMMIT")
            except CatalogIOError:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        finally:
            self._depth = 0

    def _sql(self, sql: str) -> None:
        try:
            self._db.execute(sql)
        except sqlite3.Error as e:
            raise CatalogIOError(describe_db_error(self.path, e)) from e

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, tuple(params))
        except sqlite3.IntegrityError as e:
            raise CatalogError(_explain(e)) from e
        except sqlite3.Error as e:
            raise CatalogIOError(describe_db_error(self.path, e)) from e

    # -- images ----------------------------------------------------------------------------
    def add_image(
        self,
        *,
        sha256: str,
        path: str,
        width: int,
        height: int,
        origin: str = "real",
        set_name: str | None = None,
        source: str = "",
        split: str | None = None,
        caption: str | None = None,
        annotation: Mapping[str, Any] | None = None,
        provenance: Mapping[str, Any] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> int:
        """Insert one image with its attributes; return its id."""
        if origin not in ORIGINS:
            raise CatalogError(f"origin must be one of {ORIGINS}, not {origin!r}")
        set_name = set_name or ("real" if origin == "real" else "synthetic")
        with self.transaction():
            cur = self._write(
                "INSERT INTO images (sha256, path, width, height, origin, set_name, source, split,"
                " caption, annotation, provenance) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    sha256,
                    path,
                    width,
                    height,
                    origin,
                    set_name,
                    source,
                    split,
                    caption,
                    None if annotation is None else json.dumps(annotation, sort_keys=True),
                    json.dumps(dict(provenance or {}), sort_keys=True),
                ),
            )
            image_id = int(cur.lastrowid)
            for name, value in (attributes or {}).items():
                self._write(
                    "INSERT INTO attributes (image_id, name, value) VALUES (?,?,?)",
                    (image_id, name, value),
                )
        return image_id

    def id_for_sha(self, sha256: str) -> int | None:
        row = self._db.execute("SELECT id FROM images WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else int(row[0])

    def known_shas(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT sha256 FROM images")}

    def known_paths(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT path FROM images")}

    def images(
        self,
        *,
        origin: str | None = None,
        set_name: str | None = None,
        split: str | None = None,
        ids: Iterable[int] | None = None,
    ) -> list[ImageRecord]:
        """Images matching every given filter, ordered by id. ``split='none'`` = unassigned."""
        where, params = [], []
        if origin is not None:
            where.append("origin = ?")
            params.append(origin)
        if set_name is not None:
            where.append("set_name = ?")
            params.append(set_name)
        if split == "none":
            where.append("split IS NULL")
        elif split is not None:
            if split not in SPLITS:
                raise CatalogError(f"split must be one of {SPLITS} or 'none', not {split!r}")
            where.append("split = ?")
            params.append(split)
        if ids is not None:
            id_list = [int(i) for i in ids]
            where.append(f"id IN ({','.join('?' * len(id_list))})" if id_list else "0")
            params.extend(id_list)
        sql = "SELECT * FROM images" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._db.execute(sql + " ORDER BY id", params).fetchall()
        attrs = self._attributes_for([r["id"] for r in rows])
        return [_record(r, attrs.get(r["id"], {})) for r in rows]

    def get(self, image_id: int) -> ImageRecord:
        found = self.images(ids=[image_id])
        if not found:
            raise CatalogError(f"no image with id {image_id}")
        return found[0]

    def _attributes_for(self, ids: list[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {}
        if not ids:
            return out
        q = "SELECT image_id, name, value FROM attributes"
        if len(ids) < 900:
            q += f" WHERE image_id IN ({','.join('?' * len(ids))})"
            rows = self._db.execute(q, ids)
        else:
            rows = self._db.execute(q)
        for image_id, name, value in rows:
            out.setdefault(image_id, {})[name] = value
        return out

    def count(self, *, origin: str | None = None, set_name: str | None = None) -> int:
        where, params = [], []
        if origin is not None:
            where.append("origin = ?")
            params.append(origin)
        if set_name is not None:
            where.append("set_name = ?")
            params.append(set_name)
        sql = "SELECT count(*) FROM images" + (" WHERE " + " AND ".join(where) if where else "")
        return int(self._db.execute(sql, params).fetchone()[0])

    def sets(self) -> dict[str, int]:
        """Image count per set name."""
        rows = self._db.execute("SELECT set_name, count(*) FROM images GROUP BY set_name")
        return {r[0]: int(r[1]) for r in rows}

    def set_attributes(self, image_id: int, attributes: Mapping[str, str]) -> None:
        with self.transaction():
            for name, value in attributes.items():
                self._write(
                    "INSERT INTO attributes (image_id, name, value) VALUES (?,?,?) "
                    "ON CONFLICT (image_id, name) DO UPDATE SET value = excluded.value",
                    (image_id, name, value),
                )

    def set_splits(self, assignments: Mapping[int, str | None]) -> None:
        """Assign splits in one transaction; a synthetic image in val/test is refused."""
        with self.transaction():
            for image_id, split in assignments.items():
                if split is not None and split not in SPLITS:
                    raise CatalogError(f"split must be one of {SPLITS}, not {split!r}")
                self._write("UPDATE images SET split = ? WHERE id = ?", (split, image_id))

    def set_captions(self, captions: Mapping[int, str]) -> None:
        with self.transaction():
            for image_id, caption in captions.items():
                self._write("UPDATE images SET caption = ? WHERE id = ?", (caption, image_id))

    def set_annotation(self, image_id: int, annotation: Mapping[str, Any]) -> None:
        with self.transaction():
            self._write(
                "UPDATE images SET annotation = ? WHERE id = ?",
                (json.dumps(annotation, sort_keys=True), image_id),
            )

    # -- QC and review ---------------------------------------------------------------------
    def record_qc(self, results: Iterable[QCResult]) -> None:
        """Upsert QC results (one row per image and check)."""
        with self.transaction():
            for r in results:
                self._write(
                    "INSERT INTO qc_results (image_id, check_name, passed, score, detail, config)"
                    " VALUES (?,?,?,?,?,?) ON CONFLICT (image_id, check_name) DO UPDATE SET"
                    " passed = excluded.passed, score = excluded.score,"
                    " detail = excluded.detail, config = excluded.config,"
                    " checked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                    (r.image_id, r.check_name, int(r.passed), r.score, r.detail, r.config),
                )

    def qc_results(self, image_ids: Iterable[int] | None = None) -> dict[int, list[QCResult]]:
        sql = "SELECT image_id, check_name, passed, score, detail, config FROM qc_results"
        params: list[int] = []
        if image_ids is not None:
            params = [int(i) for i in image_ids]
            sql += f" WHERE image_id IN ({','.join('?' * len(params))})" if params else " WHERE 0"
        out: dict[int, list[QCResult]] = {}
        for r in self._db.execute(sql + " ORDER BY image_id, check_name", params):
            out.setdefault(r[0], []).append(
                QCResult(r[0], r[1], bool(r[2]), r[3], r[4], r[5])
            )
        return out

    def add_review(self, image_id: int, decision: str, reviewer: str = "", note: str = "") -> int:
        if decision not in DECISIONS:
            raise CatalogError(f"decision must be one of {DECISIONS}, not {decision!r}")
        with self.transaction():
            cur = self._write(
                "INSERT INTO reviews (image_id, decision, reviewer, note) VALUES (?,?,?,?)",
                (image_id, decision, reviewer, note),
            )
        return int(cur.lastrowid)

    def latest_reviews(self) -> dict[int, str]:
        """The newest decision per reviewed image."""
        rows = self._db.execute(
            "SELECT image_id, decision FROM reviews r WHERE id = "
            "(SELECT max(id) FROM reviews WHERE image_id = r.image_id)"
        )
        return {int(a): b for a, b in rows}

    def execute(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Read-only escape hatch for reports; writes must use the methods above."""
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            raise CatalogError("Catalog.execute is for SELECT queries only")
        return self._db.execute(sql, tuple(params)).fetchall()


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection; on a read-only file system, an immutable one (no -shm needed)."""
    if not path.is_file():
        raise CatalogIOError(f"{path}: catalog missing and the workspace is read-only")
    base = f"file:{quote(os.path.abspath(path))}?mode=ro"
    db = sqlite3.connect(base, uri=True, timeout=30.0, isolation_level=None)
    try:
        db.execute("PRAGMA user_version").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise CatalogIOError(f"{path}: catalog has unsaved changes in {wal.name} and the "
                             "workspace is read-only; open it once where it is writable")
    return sqlite3.connect(base + "&immutable=1", uri=True, timeout=30.0, isolation_level=None)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _record(r: sqlite3.Row, attributes: dict[str, str]) -> ImageRecord:
    return ImageRecord(
        id=int(r["id"]),
        sha256=r["sha256"],
        path=r["path"],
        width=int(r["width"]),
        height=int(r["height"]),
        origin=r["origin"],
        set_name=r["set_name"],
        source=r["source"],
        split=r["split"],
        caption=r["caption"],
        annotation=None if r["annotation"] is None else json.loads(r["annotation"]),
        provenance=json.loads(r["provenance"]),
        attributes=dict(attributes),
    )


def describe_db_error(path: Path, e: sqlite3.Error) -> str:
    """One line for an SQLite failure: damaged file, full disk, read-only, or locked."""
    msg = str(e)
    low = msg.lower()
    if "malformed" in low or "not a database" in low or "disk i/o" in low:
        return f"{path}: catalog is damaged ({msg}); {repair_hint(path)}"
    if "full" in low:
        return f"{path}: disk full ({msg}); free space and rerun (nothing half written is kept)"
    if "readonly" in low or "read-only" in low or "unable to open" in low:
        return f"{path}: workspace is read-only ({msg}); only read commands (stats, export) work"
    if "locked" in low or "busy" in low:
        return f"{path}: catalog is busy ({msg}); another craftlora run holds it, retry later"
    return f"{path}: not a usable catalog: {msg}"


def _explain(e: sqlite3.IntegrityError) -> str:
    msg = str(e)
    if "synthetic_train_only" in msg:
        return "refused: a synthetic image may only be in the train split (never val or test)"
    if "images.sha256" in msg:
        return "refused: an image with the same content (sha256) is already in the catalog"
    if "images.path" in msg:
        return "refused: an image with the same path is already in the catalog"
    return f"refused by the catalog: {msg}"
