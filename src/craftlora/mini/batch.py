"""Run a per-image job over index chunks in a few processes, with a progress bar.

Each image draws from its own generator seeded by (seed, index), so the output is the same
whatever the number of processes or the chunking.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from tqdm import tqdm

CHUNK = 200


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_chunks(
    job: Callable[[Sequence[Any]], list[Any]],
    items: Sequence[Any],
    *,
    workers: int | None = None,
    desc: str = "render",
    progress: bool = True,
) -> list[Any]:
    """Apply ``job`` to consecutive chunks of ``items``; results come back in item order."""
    workers = default_workers() if workers is None else max(1, workers)
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    out: list[Any] = []
    bar = tqdm(total=len(items), desc=desc, unit="img", disable=not progress)
    try:
        if workers == 1 or len(chunks) <= 1:
            for c in chunks:
                out.extend(job(c))
                bar.update(len(c))
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as ex:
                for c, res in zip(chunks, ex.map(job, chunks), strict=True):
                    out.extend(res)
                    bar.update(len(c))
    finally:
        bar.close()
    return out
