"""Two reviewers and a designer on one workspace at once: every decision and session write
lands, none is lost, the catalog stays sound."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from craftlora.studio.context import StudioContext
from craftlora.studio.guard import is_loopback
from craftlora.studio.review_queue import ReviewPass, queue_ids
from craftlora.studio.sessions import new_session


def test_two_reviewers_and_a_designer_at_once(review_ws):
    ctx = StudioContext(review_ws.root)  # one server: threads share it, as in the studio
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def review(name: str) -> None:
        try:
            start.wait()
            p = ReviewPass(ids=queue_ids(ctx, "syn", "any", name), reviewer=name)
            while not p.done:
                p.decide(ctx, "accept" if p.position % 3 else "reject", "artefact")
            p.undo(ctx)
            p.decide(ctx, "accept")
        except BaseException as e:
            errors.append(e)

    def design() -> None:
        try:
            start.wait()
            for k in range(12):
                sid, state = new_session(ctx, f"s{k}", "dee")
                state["rounds"].append({"index": 0, "candidates": []})
                ctx.tables.save_session(state, sid)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=review, args=(n,)) for n in ("ann", "bob")]
    threads.append(threading.Thread(target=design))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        cat = review_ws.catalog
        rows = cat.execute("SELECT reviewer, count(*), count(DISTINCT image_id) FROM reviews"
                           " GROUP BY reviewer ORDER BY reviewer")
        assert [tuple(r) for r in rows] == [("ann", 12, 12), ("bob", 12, 12)]
        assert len(ctx.tables.sessions()) == 12
        assert all(ctx.tables.session(i)["rounds"] for i, _, _ in ctx.tables.sessions())
        with sqlite3.connect(cat.path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        ctx.close()


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True),
                                            ("::1", True), ("127.0.0.2", True),
                                            ("0.0.0.0", False), ("192.168.1.5", False),
                                            ("example.org", False), ("::", False)])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_worker_runs_one_job_and_only_its_owner_cancels():
    import time

    from craftlora.studio.worker import Busy, Cancelled, Worker

    w = Worker()
    job = w.start(lambda j: [time.sleep(0.01) for _ in range(500) if not j.cancelled], owner=1)
    with pytest.raises(Busy, match="another generation"):
        w.start(lambda j: None, owner=2)
    assert w.cancel(owner=2) is False and job.running
    assert w.cancel(owner=1) is True
    job.thread.join(timeout=10)
    assert isinstance(job.error, Cancelled) and not job.running
    assert w.start(lambda j: 42, owner=2).thread.join() is None and w.job.result == 42
