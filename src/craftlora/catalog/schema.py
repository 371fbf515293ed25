"""SQLite schema of the workspace catalog and its migrations.

``MIGRATIONS[i]`` takes a catalog from schema version ``i`` to ``i + 1``; a new catalog runs
them all. Never edit a released migration: append a new one.
"""

from __future__ import annotations

ORIGINS = ("real", "synthetic")
SPLITS = ("train", "val", "test")
DECISIONS = ("accept", "reject")

_V1 = """
CREATE TABLE images (
    id          INTEGER PRIMARY KEY,
    sha256      TEXT NOT NULL UNIQUE CHECK (length(sha256) = 64),
    path        TEXT NOT NULL UNIQUE,
    width       INTEGER NOT NULL CHECK (width > 0),
    height      INTEGER NOT NULL CHECK (height > 0),
    origin      TEXT NOT NULL CHECK (origin IN ('real', 'synthetic')),
    set_name    TEXT NOT NULL DEFAULT 'real',
    source      TEXT NOT NULL DEFAULT '',
    split       TEXT CHECK (split IS NULL OR split IN ('train', 'val', 'test')),
    caption     TEXT,
    annotation  TEXT,
    provenance  TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CONSTRAINT synthetic_train_only
        CHECK (NOT (origin = 'synthetic' AND split IN ('val', 'test')))
);
CREATE INDEX images_set ON images (set_name);
CREATE INDEX images_split ON images (split);

CREATE TABLE attributes (
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (image_id, name)
);
CREATE INDEX attributes_name_value ON attributes (name, value);

CREATE TABLE qc_results (
    image_id   INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    check_name TEXT NOT NULL,
    passed     INTEGER NOT NULL CHECK (passed IN (0, 1)),
    score      REAL,
    detail     TEXT NOT NULL DEFAULT '',
    config     TEXT NOT NULL DEFAULT '',
    checked_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (image_id, check_name)
);

CREATE TABLE reviews (
    id         INTEGER PRIMARY KEY,
    image_id   INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    decision   TEXT NOT NULL CHECK (decision IN ('accept', 'reject')),
    reviewer   TEXT NOT NULL DEFAULT '',
    note       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX reviews_image ON reviews (image_id);
"""

MIGRATIONS: list[str] = [_V1]
TABLES = ("images", "attributes", "qc_results", "reviews")
SCHEMA_VERSION = len(MIGRATIONS)
