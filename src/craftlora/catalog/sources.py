"""Reading an ingest SOURCE: walk its image files safely and read its label files.

Three layouts are understood, and can mix:
- a plain folder with a CSV (``--labels FILE.csv``, or ``labels.csv`` at the SOURCE root):
  a ``file`` column (path relative to SOURCE) and one column per attribute;
- a kohya-style folder: ``name.png`` next to ``name.txt`` holding its caption;
- a Hugging Face imagefolder: ``metadata.jsonl`` (or ``metadata.csv``) with a ``file_name``
  column, relative to the folder holding it, in the root or any subfolder.
A ``caption`` or ``text`` column is read as the caption; ``split``, ``origin``, ``set``,
``sha256``, ``width`` and ``height`` (as written by ``craftlora export``) are read and ignored.
A CSV cell that export guarded with a leading ``'`` (``'=...``) is read without it.
"""

from __future__ import annotations

import csv
import json
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from craftlora.catalog.csv_cells import restore
from craftlora.catalog.names import readable_name
from craftlora.data.imageio import is_image_name

KEY_COLUMNS = ("file", "file_name")
CAPTION_COLUMNS = ("caption", "text")
INFO_COLUMNS = ("split", "origin", "set", "sha256", "width", "height")
METADATA_NAMES = ("metadata.jsonl", "metadata.csv")
DEFAULT_LABELS = "labels.csv"


class SourceError(RuntimeError):
    """SOURCE or its labels file cannot be used at all."""


@dataclass
class LabelRow:
    file: str  # POSIX path relative to SOURCE
    attributes: dict[str, str]
    caption: str | None
    label_file: str  # as shown in reports
    line: int

    @property
    def where(self) -> str:
        return f"{self.label_file}:{self.line}"


@dataclass
class Labels:
    rows: dict[str, LabelRow] = field(default_factory=dict)
    problems: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # label files read, relative to SOURCE or abs
    ignored_columns: set[str] = field(default_factory=set)

    def problem(self, file: str, line: int, reason: str) -> None:
        self.problems.append({"file": file, "line": line, "reason": reason})


def inside(root_real: str, path: str) -> bool:
    """True when ``path`` (after following symlinks) lies inside ``root_real``."""
    target = os.path.realpath(path)
    return os.path.commonpath([root_real, target]) == root_real


def walk_images(root: Path, skip: list[Path] | None = None) -> tuple[list[str], list[dict]]:
    """Image files under ``root`` (POSIX relative paths, sorted) and the ones refused."""
    root_real = os.path.realpath(root)
    skip_real = {os.path.realpath(p) for p in skip or []}
    found: list[str] = []
    rejected: list[dict] = []

    def rel(p: str) -> str:
        return Path(os.path.relpath(p, root)).as_posix()

    def shown(p: str) -> str:
        return readable_name(rel(p))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for d in list(dirnames):
            full = os.path.join(dirpath, d)
            if os.path.realpath(full) in skip_real:
                dirnames.remove(d)
            elif os.path.islink(full):
                dirnames.remove(d)
                if not inside(root_real, full):
                    rejected.append({"path": shown(full), "reason": "symlink leads outside SOURCE "
                                     f"(to {readable_name(os.path.realpath(full))})"})
                else:
                    rejected.append({"path": shown(full), "reason": "symlinked folder not followed "
                                     "(its target inside SOURCE is walked directly)"})
        for name in sorted(filenames):
            if not is_image_name(name):
                continue
            full = os.path.join(dirpath, name)
            if os.path.islink(full) and not inside(root_real, full):
                rejected.append({"path": shown(full), "reason": "symlink leads outside SOURCE "
                                 f"(to {readable_name(os.path.realpath(full))})"})
            elif not os.path.exists(full):
                rejected.append({"path": shown(full), "reason": "broken symlink"})
            elif not os.path.isfile(full):
                rejected.append({"path": shown(full), "reason": "not a regular file"})
            else:
                found.append(rel(full))
    found.sort()
    return found, rejected


def find_label_files(root: Path, labels: Path | None) -> list[tuple[Path, str]]:
    """(file, folder its paths are relative to, as a POSIX path relative to SOURCE)."""
    if labels is not None:
        if not labels.is_file():
            raise SourceError(f"{labels}: labels file not found")
        return [(labels, "")]
    out = []
    if (root / DEFAULT_LABELS).is_file():
        out.append((root / DEFAULT_LABELS, ""))
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in METADATA_NAMES:
            if name in filenames:
                base = Path(os.path.relpath(dirpath, root)).as_posix()
                out.append((Path(dirpath) / name, "" if base == "." else base))
    return out


def read_labels(
    root: Path, files: list[tuple[Path, str]], attributes: dict[str, list[str]]
) -> Labels:
    """Read every label file; problems are listed by file and line, never raised."""
    labels = Labels()
    root_real = os.path.realpath(root)
    for path, base in files:
        shown = _shown(path, root)
        labels.files.append(shown)
        jsonl = path.suffix.lower() == ".jsonl"
        reader = _read_jsonl if jsonl else _read_csv
        unknown_reported: set[str] = set()
        for line, row, problem in reader(path):
            if problem:
                labels.problem(shown, line, problem)
                continue
            assert row is not None
            key = next((k for k in KEY_COLUMNS if k in row), None)
            if key is None:
                labels.problem(shown, line, f"no {' or '.join(map(repr, KEY_COLUMNS))} field")
                continue
            attrs: dict[str, str] = {}
            caption = None
            for col, value in row.items():
                if col == key:
                    continue
                if col in attributes:
                    value = "" if value is None else str(value).strip()
                    if value:
                        attrs[col] = value
                elif col in CAPTION_COLUMNS:
                    caption = None if value is None else str(value).strip() or None
                elif col in INFO_COLUMNS:
                    labels.ignored_columns.add(col)
                elif col not in unknown_reported:
                    unknown_reported.add(col)
                    labels.problem(shown, line if jsonl else 1,
                                   f"unknown column {col!r} (not an attribute of this "
                                   f"workspace: {sorted(attributes)}); ignored")
            raw = str(row[key] or "").strip()
            if not raw:
                labels.problem(shown, line, f"empty {key!r}")
                continue
            rel = posixpath.normpath(posixpath.join(base, raw.replace("\\", "/")))
            full = os.path.join(root, rel)
            if posixpath.isabs(raw) or rel.startswith("../") or rel == ".." or (
                os.path.lexists(full) and not inside(root_real, full)
            ):
                labels.problem(shown, line, f"{raw}: path leads outside SOURCE")
                continue
            if not os.path.lexists(full):
                labels.problem(shown, line, f"{raw}: file not found")
                continue
            if rel in labels.rows:
                labels.problem(shown, line, f"{raw}: listed again (first at "
                               f"{labels.rows[rel].where}); this row ignored")
                continue
            labels.rows[rel] = LabelRow(rel, attrs, caption, shown, line)
    return labels


def _shown(path: Path, root: Path) -> str:
    try:
        return Path(os.path.relpath(path, root)).as_posix() if inside(
            os.path.realpath(root), str(path)) else str(path)
    except ValueError:
        return str(path)


def _read_csv(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: cannot read labels: {e}") from e
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration as e:
        raise SourceError(f"{path}: labels file is empty") from e
    except csv.Error as e:
        raise SourceError(f"{path}: line 1: unreadable header ({e})") from e
    if not any(k in header for k in KEY_COLUMNS):
        raise SourceError(f"{path}: line 1: no {' or '.join(map(repr, KEY_COLUMNS))} column "
                          f"(header: {header})")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise SourceError(f"{path}: line 1: duplicate column(s) {dup}")
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            yield reader.line_num, None, f"malformed row ({e})"
            continue
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            yield line, None, (f"malformed row: {len(fields)} fields where the header has "
                               f"{len(header)}")
            continue
        yield line, dict(zip(header, map(restore, fields), strict=True)), None


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: cannot read metadata: {e}") from e
    for i, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            yield i, None, f"malformed row: not JSON ({e.msg})"
            continue
        if not isinstance(obj, dict):
            yield i, None, "malformed row: not a JSON object"
            continue
        yield i, obj, None
