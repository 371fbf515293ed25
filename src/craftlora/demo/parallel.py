"""Run a job in a few fresh processes (one torch thread each) with one progress bar.

Workers are started with ``spawn`` (no forked torch state) and report progress either by
putting image counts on a queue (``report``) or through a ``poll`` callable the parent calls
(for jobs that write one file per finished unit). With one worker the job runs in-process.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any

from tqdm import tqdm


def one_thread() -> None:
    """torch (and its BLAS) on one thread in this process; no model-loading progress bars."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    try:
        import diffusers.utils.logging as dlog
        import transformers.utils.logging as tlog

        dlog.disable_progress_bar()
        tlog.disable_progress_bar()
        tlog.set_verbosity_error()  # loading a LoRA lists every base weight as "missing"
    except ImportError:  # the bars are cosmetic
        pass


class _Counter:
    """A ``report`` callable that forwards counts to the parent's queue."""

    def __init__(self, q: Any):
        self.q = q

    def __call__(self, n: int) -> None:
        self.q.put(int(n))


def advance(bar: tqdm, done: int) -> None:
    """Move ``bar`` forward to ``done`` (capped at its total); never backwards, never by 0
    (``update(0)`` redraws: one more line per poll in a log file)."""
    if (step := min(done, bar.total) - bar.n) > 0:
        bar.update(step)


def run_parallel(
    job: Callable[..., Any],
    args: Sequence[tuple[Any, ...]],
    *,
    total: int,
    desc: str,
    progress: bool = True,
    poll: Callable[[], int] | None = None,
) -> list[Any]:
    """``job(*a, report)`` for each ``a`` in ``args``, in parallel; results in order.

    ``report(n)`` advances the bar by ``n``; with ``poll`` the bar shows ``poll()`` instead.
    The first worker error is raised here after the others are cancelled.
    """
    bar = tqdm(total=total, desc=desc, disable=not progress, unit="img" if poll is None
               else "run")

    try:
        if len(args) == 1:
            def local(n: int) -> None:
                bar.update(n) if poll is None else advance(bar, poll())

            return [job(*args[0], local)]
        ctx = get_context("spawn")
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        with ctx.Manager() as manager:
            q = manager.Queue()
            with ProcessPoolExecutor(len(args), mp_context=ctx, initializer=one_thread) as ex:
                futures: list[Future] = [ex.submit(job, *a, _Counter(q)) for a in args]
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                    _drain(q, bar if poll is None else None)
                    if poll is not None:
                        advance(bar, poll())
                    for f in done:
                        if f.exception() is not None:
                            for p in pending:
                                p.cancel()
                            raise f.exception()  # type: ignore[misc]
                _drain(q, bar if poll is None else None)
                return [f.result() for f in futures]
    finally:
        if poll is not None:
            advance(bar, poll())
        bar.close()


def _drain(q: Any, bar: Any) -> None:
    while True:
        try:
            n = q.get_nowait()
        except (queue.Empty, EOFError, OSError):
            return
        if bar is not None:
            bar.update(n)


def in_background(job: Callable[..., Any], *args: Any) -> tuple[Any, Future]:
    """Start ``job(*args)`` in one spawned process; returns (executor, future)."""
    ctx = get_context("spawn")
    ex = ProcessPoolExecutor(1, mp_context=ctx, initializer=one_thread)
    return ex, ex.submit(job, *args)


def wait_for(ex: Any, fut: Future, what: str, every: float = 30.0) -> Any:
    """Block until ``fut`` is done (printing a line every ``every`` s) and shut ``ex`` down."""
    t0 = time.perf_counter()
    try:
        while True:
            try:
                return fut.result(timeout=every)
            except TimeoutError:
                tqdm.write(f"  waiting for {what} ({time.perf_counter() - t0:.0f} s)")
    finally:
        ex.shutdown()
