"""Ingest a folder of images into a workspace: safe decode, content hash, copy, catalog.

Originals are copied untouched to ``WS/images/<sha[:2]>/<sha256>.<ext>`` (content-addressed,
so a copy is the same whoever writes it and however often). Decoding and hashing run in a pool
of worker processes; catalog rows are inserted in transactions of ``commit_every`` images. A
run killed at any point leaves a consistent catalog; a rerun skips what is already there (same
content from the same source path) and finishes the rest, so every image ends up exactly once.
Two runs at once are safe: temp files are owned by their process (only a dead run's are
removed), and a row another run committed first counts as already present. A file name that
is not UTF-8 is stored in its readable, lossless form (``names``). Each copy gets a JSON record
(``records``) so ``craftlora doctor`` can rebuild a lost catalog. A full disk or a read-only
workspace stops the run in one line and removes the copies it wrote but did not catalog.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from craftlora.catalog.ingest_worker import IMAGES_DIR, Job, process
from craftlora.catalog.names import readable_name
from craftlora.catalog.records import record_path, write_record
from craftlora.catalog.sources import (
    Labels,
    SourceError,
    find_label_files,
    inside,
    read_labels,
    walk_images,
)
from craftlora.catalog.store import CatalogError, CatalogIOError
from craftlora.catalog.workspace import Workspace
from craftlora.data.atomic import remove_orphan_temps
from craftlora.data.imageio import IMAGE_EXTENSIONS
from craftlora.runtime import workers as worker_pool


class IngestError(SourceError):
    """SOURCE cannot be ingested at all (missing, not a folder, unreadable labels)."""


class IngestAborted(IngestError):
    """The workspace could not take more (disk full, read-only); this run's copies are removed."""


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
    report = IngestReport(source=readable_name(str(source)), origin=origin, set_name=set_name)
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
    base_provenance = {"source_root": readable_name(str(source.resolve())), **(provenance or {})}
    images_dir = ws.root / IMAGES_DIR
    if images_dir.is_dir():
        remove_orphan_temps(images_dir)  # only those of runs that are gone

    known = {r["sha256"]: (r["source"], r["set_name"], r["path"])
             for r in ws.catalog.execute("SELECT sha256, source, set_name, path FROM images")}
    n_workers = workers or ws.config.ingest.workers or os.cpu_count() or 1
    report.workers = n_workers
    run = _Run(ws, report, known, commit_every, {
        "origin": origin, "set_name": set_name,
        "split": "train" if origin == "synthetic" else None}, base_provenance)
    # the pool forks before the progress bar starts its thread
    with ExitStack() as stack:
        results = _results(jobs, n_workers, stack)
        advance = stack.enter_context(_progress(progress, len(jobs)))
        for job, meta, res in zip(jobs, metas, results, strict=True):
            advance()
            run.take(job, meta, res)
        run.flush()
    if run.stopped is not None:  # every result is in, so no worker writes any more
        removed = run.remove_uncatalogued()
        raise IngestAborted(f"{ws.root}: ingest stopped: {_reason(run.stopped)}; "
                            f"{report.ingested} image(s) catalogued before it, {removed} "
                            "uncatalogued copy(ies) removed; fix that and rerun to add the rest")
    return report


class _Run:
    """One ingest run's bookkeeping: which results become catalog rows, in batches."""

    def __init__(self, ws: Workspace, report: IngestReport, known: dict[str, tuple],
                 commit_every: int, fixed: dict[str, Any], provenance: dict[str, Any]):
        self.ws, self.report, self.known = ws, report, known
        self.commit_every, self.fixed, self.provenance = commit_every, fixed, provenance
        self.seen: dict[str, str] = {}
        self.batch: list[dict[str, Any]] = []
        self.copied: list[str] = []  # copies this run wrote (removed again if it stops)
        self.stopped: OSError | CatalogIOError | None = None  # the workspace took no more

    def take(self, job: Job, meta: dict[str, Any], res: dict[str, Any]) -> None:
        """Catalog one result; after a disk-full or read-only error only note its copy."""
        if res.get("copied"):
            self.copied.append(res["path"])
        if self.stopped is None and res.get("fatal"):
            self.stopped = OSError(res["errno"], res["reason"])
        if self.stopped is not None:
            return
        try:
            self._take(job, meta, res)
        except (OSError, CatalogIOError) as e:
            self.stopped = e

    def _take(self, job: Job, meta: dict[str, Any], res: dict[str, Any]) -> None:
        report, rel = self.report, job.shown
        if not res["ok"]:
            report.rejected.append({"path": rel, "reason": res["reason"]})
            return
        if meta.get("unlisted"):
            report.rejected.append({"path": rel, "reason": meta["unlisted"]})
            return
        if "sidecar_problem" in res:
            report.sidecar_problems.append({"path": rel, "reason": res["sidecar_problem"]})
        sha = res["sha256"]
        if sha in self.seen:
            report.rejected.append({"path": rel, "reason": f"exact duplicate of {self.seen[sha]} "
                                    "(same sha256) in this SOURCE"})
            return
        self.seen[sha] = rel
        if sha in self.known:
            k_source, k_set, k_path = self.known[sha]
            if k_source == rel and k_set == self.fixed["set_name"]:
                report.already_present += 1
            else:
                report.rejected.append({"path": rel, "reason": "exact duplicate (same "
                                        f"sha256) of {k_source or k_path} already in the "
                                        f"catalog (set {k_set!r}, {k_path})"})
            return
        caption = meta["caption"] or res.get("caption")
        report.captions_read += caption is not None
        report.annotations_read += "annotation" in res
        self.batch.append({
            "sha256": sha, "path": res["path"], "width": res["width"], "height": res["height"],
            **self.fixed, "source": rel, "caption": caption, "annotation": res.get("annotation"),
            "provenance": {**self.provenance, "format": res["format"]},
            "attributes": meta["attributes"],
        })
        if len(self.batch) >= self.commit_every:
            self.flush()

    def flush(self) -> None:
        """Records, one sync, then the rows in one transaction (a concurrent run's are skipped)."""
        if not self.batch or self.stopped is not None:
            return
        try:
            self._flush()
        except (OSError, CatalogIOError) as e:
            self.stopped = e

    def _flush(self) -> None:
        cat = self.ws.catalog
        for row in self.batch:
            write_record(self.ws.root / row["path"], row)
        os.sync()  # the copies reach the disk before the rows that name them commit
        added = 0
        with cat.transaction():
            for row in self.batch:
                try:
                    cat.add_image(**row)
                    added += 1
                except CatalogIOError:
                    raise
                except CatalogError as e:  # another run added it since this one started
                    if _same_entry(cat, row):
                        self.report.already_present += 1
                    else:
                        self.report.rejected.append({"path": row["source"], "reason": str(e)})
        self.report.ingested += added
        self.batch.clear()

    def remove_uncatalogued(self) -> int:
        """Delete the copies (and records) this run wrote that no catalog row names."""
        named = self.ws.catalog.known_paths()
        n = 0
        for rel in self.copied:
            if rel not in named:
                copy = self.ws.root / rel
                record_path(copy).unlink(missing_ok=True)
                if copy.exists():
                    copy.unlink()
                    n += 1
        return n


def _same_entry(cat: Any, row: dict[str, Any]) -> bool:
    """True when the catalog already holds this content from the same source name and set."""
    found = cat.execute("SELECT source, set_name FROM images WHERE sha256 = ? OR path = ?",
                        (row["sha256"], row["path"]))
    return bool(found) and (found[0][0], found[0][1]) == (row["source"], row["set_name"])


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return f"disk full ({e.strerror or e})"
    if isinstance(e, OSError) and e.errno == errno.EROFS:
        return f"workspace is read-only ({e.strerror or e})"
    return str(e) if isinstance(e, CatalogIOError) else f"{e.strerror or e}"


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
        shown = readable_name(rel)
        row = table.rows.get(rel)
        # an unlisted file is still decoded (not copied): a damaged one reports its real defect
        unlisted = (f"not listed in the labels file(s) {table.files}"
                    if labelled and row is None else None)
        attrs = row.attributes if row else {}
        bad = [f"{a}={v!r} is not allowed (allowed: {', '.join(allowed[a])})"
               for a, v in attrs.items() if v not in allowed[a]]
        if bad:
            report.rejected.append({"path": shown, "reason": f"{row.where}: " + "; ".join(bad)})
            continue
        full = source / rel
        stem = full.with_suffix("")
        sidecars = {}
        for ext in (".txt", ".json"):
            side = stem.with_name(stem.name + ext)
            if side.is_file() and inside(root_real, str(side)):
                sidecars[ext] = str(side)
        jobs.append(Job(
            source_path=str(full.resolve()), shown=shown, workspace=str(ws.root.resolve()),
            max_pixels=ws.config.ingest.max_pixels,
            caption_file=sidecars.get(".txt"), annotation_file=sidecars.get(".json"),
            copy=unlisted is None,
        ))
        metas.append({"attributes": attrs, "caption": row.caption if row else None,
                      "unlisted": unlisted})
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

