"""One background job at a time: a thread that reports progress and can be cancelled.

The page polls ``Job.progress`` while the thread runs, so the server keeps answering other
requests (a reviewer's keys, another designer's page) during a generation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Cancelled(RuntimeError):
    """The job was cancelled by the user."""


class Busy(RuntimeError):
    """Another job is running."""


@dataclass
class Job:
    fn: Callable[[Job], Any]
    owner: Any = None  # who may cancel it (the design session that started it)
    progress: float = 0.0
    message: str = "queued"
    result: Any = None
    error: BaseException | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def report(self, progress: float, message: str) -> None:
        self.progress, self.message = max(0.0, min(1.0, progress)), message

    def cancel(self) -> None:
        self.cancel_event.set()

    def _run(self) -> None:
        try:
            self.result = self.fn(self)
            if self.cancelled:
                raise Cancelled("cancelled")
        except BaseException as e:  # reported to the page, never lost in the thread
            self.error = e


class Worker:
    """Runs one job at a time in a daemon thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.job: Job | None = None

    def start(self, fn: Callable[[Job], Any], owner: Any = None) -> Job:
        with self._lock:
            if self.job is not None and self.job.running:
                raise Busy("another generation is running; wait for it to finish")
            job = Job(fn, owner)
            job.thread = threading.Thread(target=job._run, daemon=True, name="studio-worker")
            self.job = job
            job.thread.start()
            return job

    def cancel(self, owner: Any = None) -> bool:
        """Cancel the running job if ``owner`` started it; False when there is none."""
        job = self.job
        if job is None or not job.running or job.owner != owner:
            return False
        job.cancel()
        return True
