"""The one place that owns worker processes: every pool's workers end when the parent dies.

``pool(n, start=...)`` is a ``ProcessPoolExecutor`` whose workers, as they start, ask Linux to
SIGKILL them when their parent dies (``prctl(PR_SET_PDEATHSIG)``) and run a watchdog thread that
ends them once their parent pid changes (the portable fallback). Without that, a parent killed
with SIGKILL leaves its workers blocked on the task pipe for ever. Everything that runs work in
processes (ingest, mini-world renders, generation and QC shards, experiment runs) goes through
``pool``; ``run_parallel`` and ``map_chunks`` are its two shapes of use.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Literal

from tqdm import tqdm

Start = Literal["fork", "spawn"]
PR_SET_PDEATHSIG = 1
WATCH_EVERY_S = 0.25
_REPORT: Any = None  # a worker's progress queue (set by its initializer)


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` is no longer its parent (call first in a worker)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # the watchdog below still covers it
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_EVERY_S)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def one_thread() -> None:
    """torch (and its BLAS) on one thread in this process; no model-loading progress bars."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch  # here, not at the top: ingest and the mini renders use pools without torch

    torch.set_num_threads(1)
    try:
        import diffusers.utils.logging as dlog
        import transformers.utils.logging as tlog

        dlog.disable_progress_bar()
        tlog.disable_progress_bar()
        tlog.set_verbosity_error()  # loading a LoRA lists every base weight as "missing"
    except ImportError:  # the bars are cosmetic
        pass


def _start_worker(parent: int, report: Any, init: Callable[..., None] | None,
                  initargs: tuple[Any, ...]) -> None:
    global _REPORT
    die_with_parent(parent)
    _REPORT = report
    if init is not None:
        init(*initargs)


def pool(workers: int, *, start: Start = "spawn", initializer: Callable[..., None] | None = None,
         initargs: tuple[Any, ...] = (), report: Any = None) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process.

    ``start="fork"`` shares what the parent already imported (fast; only before the parent
    starts threads); ``"spawn"`` starts clean interpreters (no forked torch state).
    ``initializer(*initargs)`` runs in each worker after it is bound to this process.
    Linux ends a worker when the *thread* that started it ends: use a pool from the thread
    that created it (workers start on the first ``submit`` / ``map``), as every caller does.
    """
    return ProcessPoolExecutor(workers, mp_context=get_context(start), initializer=_start_worker,
                               initargs=(os.getpid(), report, initializer, initargs))


class _Counter:
    """A ``report(n)`` callable that forwards counts to the parent over the pool's queue."""

    def __call__(self, n: int) -> None:
        _REPORT.put(int(n))


def advance(bar: tqdm, done: int) -> None:
    """Move ``bar`` forward to ``done`` (capped at its total); never backwards, never by 0
    (``update(0)`` redraws: one more line per poll in a log file)."""
    if (step := min(done, bar.total) - bar.n) > 0:
        bar.update(step)


def first_error(futures: set[Future], on_done: Callable[[Future], None] = lambda f: None,
                every: float | None = None, on_wait: Callable[[], None] = lambda: None) -> None:
    """Wait for ``futures``; raise the first worker error after cancelling the others."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=every, return_when=FIRST_EXCEPTION)
        on_wait()
        for f in done:
            if f.exception() is not None:
                for p in pending:
                    p.cancel()
                raise f.exception()  # type: ignore[misc]
            on_done(f)


def run_parallel(
    job: Callable[..., Any],
    args: Sequence[tuple[Any, ...]],
    *,
    total: int,
    desc: str,
    progress: bool = True,
    poll: Callable[[], int] | None = None,
) -> list[Any]:
    """``job(*a, report)`` for each ``a`` in ``args``, one spawned process each; results in order.

    ``report(n)`` advances the bar by ``n``; with ``poll`` the bar shows ``poll()`` instead.
    With one ``a`` the job runs in this process. The first worker error is raised here.
    """
    bar = tqdm(total=total, desc=desc, disable=not progress, unit="img" if poll is None
               else "run")
    try:
        if len(args) == 1:
            def local(n: int) -> None:
                bar.update(n) if poll is None else advance(bar, poll())

            return [job(*args[0], local)]
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        ctx = get_context("spawn")
        q = ctx.SimpleQueue()  # a put reaches the pipe before the job returns

        def show() -> None:
            _drain(q, bar if poll is None else None)
            if poll is not None:
                advance(bar, poll())

        with pool(len(args), start="spawn", initializer=one_thread, report=q) as ex:
            futures = [ex.submit(job, *a, _Counter()) for a in args]
            first_error(set(futures), every=0.5, on_wait=show)
            show()
            return [f.result() for f in futures]
    finally:
        if poll is not None:
            advance(bar, poll())
        bar.close()


def _drain(q: Any, bar: Any) -> None:
    while not q.empty():
        n = q.get()
        if bar is not None:
            bar.update(n)


def map_chunks(
    job: Callable[[Sequence[Any]], list[Any]],
    items: Sequence[Any],
    *,
    workers: int | None = None,
    chunk: int = 200,
    desc: str,
    progress: bool = True,
) -> list[Any]:
    """``job`` over consecutive chunks of ``items`` in forked workers; results in item order.

    ``workers=None`` means up to two (one per core of a small machine).
    """
    workers = max(1, min(2, os.cpu_count() or 1)) if workers is None else max(1, workers)
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    out: list[Any] = []
    bar = tqdm(total=len(items), desc=desc, unit="img", disable=not progress)
    try:
        if workers <= 1 or len(chunks) <= 1:
            for c in chunks:
                out.extend(job(c))
                bar.update(len(c))
        else:
            with pool(workers, start="fork") as ex:
                for c, res in zip(chunks, ex.map(job, chunks), strict=True):
                    out.extend(res)
                    bar.update(len(c))
    finally:
        bar.close()
    return out
