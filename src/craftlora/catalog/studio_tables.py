"""The studio's own tables beside the catalog's (additive: created when missing, never altered).

``design_sessions``: one row per design session, its rounds as JSON (prompt, settings, seeds,
candidates, picks). ``sus_responses``: one row per System Usability Scale questionnaire.
The studio also withdraws a review decision (undo) here, in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

TABLES = """
CREATE TABLE IF NOT EXISTS design_sessions (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    designer   TEXT NOT NULL DEFAULT '',
    state      TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS sus_responses (
    id          INTEGER PRIMARY KEY,
    participant TEXT NOT NULL,
    answers     TEXT NOT NULL,
    score       REAL NOT NULL CHECK (score >= 0 AND score <= 100),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""


class StudioTables:
    """A second connection to ``catalog.sqlite`` for the studio's tables (WAL: readers and the
    catalog's own connection go on while this one writes)."""

    def __init__(self, catalog_path: str | Path):
        self._db = sqlite3.connect(str(catalog_path), timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA busy_timeout = 30000")
        self._lock = threading.RLock()  # one connection, many server threads
        self._write_all([(s, ()) for s in TABLES.split(";") if s.strip()])

    def close(self) -> None:
        self._db.close()

    def _write_all(self, statements: list[tuple[str, tuple[Any, ...]]]) -> list[int]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                ids = [int(self._db.execute(sql, params).lastrowid or 0)
                       for sql, params in statements]
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return ids

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- review ------------------------------------------------------------------------------
    def withdraw_review(self, review_id: int, reviewer: str) -> bool:
        """Delete one decision of ``reviewer`` (undo); False when there is no such row."""
        with self._lock:
            before = self._db.total_changes
            self._write_all([("DELETE FROM reviews WHERE id = ? AND reviewer = ?",
                              (int(review_id), reviewer))])
            return self._db.total_changes > before

    # -- design sessions ---------------------------------------------------------------------
    def save_session(self, state: dict[str, Any], session_id: int | None = None) -> int:
        data = json.dumps(state, sort_keys=True)
        if session_id is None:
            return self._write_all([(
                "INSERT INTO design_sessions (name, designer, state) VALUES (?,?,?)",
                (state.get("name", ""), state.get("designer", ""), data))])[0]
        self._write_all([(
            "UPDATE design_sessions SET state = ?, name = ?, designer = ?,"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
            (data, state.get("name", ""), state.get("designer", ""), int(session_id)))])
        return int(session_id)

    def session(self, session_id: int) -> dict[str, Any] | None:
        rows = self._read("SELECT state FROM design_sessions WHERE id = ?", (int(session_id),))
        return json.loads(rows[0][0]) if rows else None

    def sessions(self) -> list[tuple[int, str, str]]:
        """(id, name, updated_at) of every design session, newest first."""
        rows = self._read("SELECT id, name, updated_at FROM design_sessions"
                          " ORDER BY updated_at DESC, id DESC")
        return [(int(a), b, c) for a, b, c in rows]

    # -- usability ---------------------------------------------------------------------------
    def add_sus(self, participant: str, answers: list[int], score: float) -> int:
        return self._write_all([(
            "INSERT INTO sus_responses (participant, answers, score) VALUES (?,?,?)",
            (participant, json.dumps(list(answers)), float(score)))])[0]

    def sus_scores(self) -> list[tuple[str, float]]:
        rows = self._read("SELECT participant, score FROM sus_responses ORDER BY id")
        return [(a, float(b)) for a, b in rows]
