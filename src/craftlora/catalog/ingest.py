"""Ingest a folder of images into a workspace: safe decode, content hash, copy, catalog.

Originals are copied untouched to ``WS/images/<sha[:2]>/<sha256>.<ext>`` (content-addressed,
so a copy is the same whoever writes it and however often). Decoding and hashing run in a pool
of worker processes; catalog rows are inserted in transactions of ``commit_every`` images. A
run killed at any point leaves a consistent catalog; a rerun skips what is already there (same
content from the same source path) and finishes the rest, so every image ends up exactly once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from craftlora.catalog.ingest_worker import IMAGES_DIR, Job, process
from craftlora.catalog.sources import (
    Labels,
    SourceError,
    find_label_files,
    inside,
    read_labels,
    walk_images,
)
from craftlora.catalog.store import CatalogError
from craftlora.catalog.workspace import Workspace
from craftlora.data.atomic import remove_orphan_temps
from craftlora.data.imageio import IMAGE_EXTENSIONS
from craftlora.runtime import workers as worker_pool


class IngestError(SourceError):
    """SOURCE cannot be ingested at all (missing, not a folder, unreadable labels)."""


@dataclass
class IngestReport:
    source: str
    origin: str
    set_name: str
    ingested: int = 0
    already_present: int = 0
    rejected: list[dict] = field(default_factory=list)
    label_problems: list[dict] = field(default_factory=list)
    sidecar_problems: list[dict] = field(default_factory=list)
    label_files: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    captions_read: int = 0
    annotations_read: int = 0
    workers: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ingest(
    ws: Workspace,
    source: Path,
    *,
    labels: Path | None = None,
    origin: str = "real",
    set_name: str | None = None,
    provenance: dict | None = None,
    progress: bool = True,
    workers: int | None = None,
    commit_every: int = 256,
) -> IngestReport:
    """Copy every good image under ``source`` into ``ws`` and catalog it; report the rest."""
    if origin not in ("real", "synthetic"):
        raise IngestError(f"origin must be 'real' or 'synthetic', not {origin!r}")
    source = Path(source)
    if not source.exists():
        raise IngestError(f"{source}: SOURCE not found")
    if not source.is_dir():
        raise IngestError(f"{source}: SOURCE is not a folder")
    if not os.access(source, os.R_OK | os.X_OK):
        raise IngestError(f"{source}: SOURCE is not readable")
    set_name = set_name or ("real" if origin == "real" else "synthetic")
    report = IngestReport(source=str(source), origin=origin, set_name=set_name)
    allowed = {name: a.values for name, a in ws.config.attributes.items()}

    label_files = find_label_files(source, Path(labels) if labels is not None else None)
    table = read_labels(source, label_files, allowed)
    report.label_files = table.files
    report.label_problems = table.problems
    report.ignored_columns = sorted(table.ignored_columns)

    files, refused = walk_images(source, skip=[ws.root])
    report.rejected.extend(refused)
    walked = set(files) | {r["path"] for r in refused}
    for rel, row in table.rows.items():
        if rel not in walked:
            report.label_problems.append({"file": row.label_file, "line": row.line, "reason": (
                f"{rel}: not an image file name (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})"
            )})
    if not files and not refused:
        raise IngestError(f"{source}: no image files found (looked for .png, .jpg, .webp, ...)")

    jobs, metas = _plan(ws, source, files, table, allowed, bool(label_files), report)
    base_provenance = {"source_root": str(source.resolve()), **(provenance or {})}
    images_dir = ws.root / IMAGES_DIR
    if images_dir.is_dir():
        remove_orphan_temps(images_dir)

    known = {r["sha256"]: (r["source"], r["set_name"], r["path"])
             for r in ws.catalog.execute("SELECT sha256, source, set_name, path FROM images")}
    seen: dict[str, str] = {}
    batch: list[dict[str, Any]] = []
    n_workers = workers or ws.config.ingest.workers or os.cpu_count() or 1
    report.workers = n_workers

    def flush() -> None:
        os.sync()  # the copies reach the disk before the rows that name them commit
        added = 0
        with ws.catalog.transaction():
            for row in batch:
                try:  # another process may have added the same content meanwhile
                    ws.catalog.add_image(**row)
                    added += 1
                except CatalogError as e:
                    report.rejected.append({"path": row["source"], "reason": str(e)})
        report.ingested += added
        batch.clear()

    # the pool forks before the progress bar starts its thread
    with ExitStack() as stack:
        results = _results(jobs, n_workers, stack)
        advance = stack.enter_context(_progress(progress, len(jobs)))
        for job, meta, res in zip(jobs, metas, results, strict=True):
            advance()
            rel = job.shown
            if not res["ok"]:
                report.rejected.append({"path": rel, "reason": res["reason"]})
                continue
            if "sidecar_problem" in res:
                report.sidecar_problems.append({"path": rel, "reason": res["sidecar_problem"]})
            sha = res["sha256"]
            if sha in seen:
                report.rejected.append({"path": rel, "reason": f"exact duplicate of {seen[sha]} "
                                        "(same sha256) in this SOURCE"})
                continue
            if sha in known:
                k_source, k_set, k_path = known[sha]
                if k_source == rel and k_set == set_name:
                    report.already_present += 1
                else:
                    report.rejected.append({"path": rel, "reason": "exact duplicate (same "
                                            f"sha256) of {k_source or k_path} already in the "
                                            f"catalog (set {k_set!r}, {k_path})"})
                seen[sha] = rel
                continue
            seen[sha] = rel
            caption = meta["caption"] or res.get("caption")
            report.captions_read += caption is not None
            report.annotations_read += "annotation" in res
            batch.append({
                "sha256": sha, "path": res["path"], "width": res["width"],
                "height": res["height"], "origin": origin, "set_name": set_name,
                "source": rel, "split": "train" if origin == "synthetic" else None,
                "caption": caption, "annotation": res.get("annotation"),
                "provenance": {**base_provenance, "format": res["format"]},
                "attributes": meta["attributes"],
            })
            if len(batch) >= commit_every:
                flush()
        if batch:
            flush()
    return report


def _plan(
    ws: Workspace,
    source: Path,
    files: list[str],
    table: Labels,
    allowed: dict[str, list[str]],
    labelled: bool,
    report: IngestReport,
) -> tuple[list[Job], list[dict[str, Any]]]:
    """A job per file whose labels are acceptable; the others go to ``report.rejected``."""
    root_real = os.path.realpath(source)
    jobs: list[Job] = []
    metas: list[dict[str, Any]] = []
    for rel in files:
        row = table.rows.get(rel)
        if labelled and row is None:
            report.rejected.append({"path": rel, "reason": "not listed in the labels file(s) "
                                    f"{table.files}"})
            continue
        attrs = row.attributes if row else {}
        bad = [f"{a}={v!r} is not allowed (allowed: {', '.join(allowed[a])})"
               for a, v in attrs.items() if v not in allowed[a]]
        if bad:
            report.rejected.append({"path": rel, "reason": f"{row.where}: " + "; ".join(bad)})
            continue
        full = source / rel
        stem = full.with_suffix("")
        sidecars = {}
        for ext in (".txt", ".json"):
            side = stem.with_name(stem.name + ext)
            if side.is_file() and inside(root_real, str(side)):
                sidecars[ext] = str(side)
        jobs.append(Job(
            source_path=str(full.resolve()), shown=rel, workspace=str(ws.root.resolve()),
            max_pixels=ws.config.ingest.max_pixels,
            caption_file=sidecars.get(".txt"), annotation_file=sidecars.get(".json"),
        ))
        metas.append({"attributes": attrs, "caption": row.caption if row else None})
    return jobs, metas


def _results(jobs: list[Job], workers: int, stack: ExitStack) -> Iterator[dict[str, Any]]:
    """Results in job order; a pool of ``workers`` processes unless there is one job or worker.

    Workers are forked (a spawned worker would re-run an unguarded ``__main__``); they are all
    started here, before the caller starts any thread, and die with this process.
    """
    if workers <= 1 or len(jobs) <= 1:
        return map(process, jobs)
    chunk = max(1, min(32, len(jobs) // (workers * 8) or 1))
    pool = stack.enter_context(worker_pool.pool(workers, start="fork"))
    return pool.map(process, jobs, chunksize=chunk)


class _progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress("ingest", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                             console=Console(stderr=True), transient=False)
        self._bar.start()
        task = self._bar.add_task("ingest", total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.stop()

