"""`craftlora review` (summary, JSON, CSV) and what `craftlora studio` refuses before serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from craftlora.cli.main import app
from craftlora.qc.review import note_of
from craftlora.studio.guard import LOCK_NAME, acquire_lock, release_lock


def test_review_cli_json_csv_and_unknown_set(review_ws, tmp_path):
    cat = review_ws.catalog
    ids = [r.id for r in cat.images(set_name="syn")][:4]
    for i in ids[:3]:
        cat.add_review(i, "accept", "ann")
    cat.add_review(ids[3], "reject", "ann", note_of("modern element"))
    root, out = str(review_ws.root), tmp_path / "decisions.csv"
    r = CliRunner().invoke(app, ["review", root, "--set", "syn", "--json", "--csv", str(out)])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert (s["reviewed"], s["accepted"], s["pass_rate"]) == (4, 3, 0.75)
    assert s["reasons"] == {"modern element": 1} and s["csv"]["rows"] == 4
    assert len(out.read_text().splitlines()) == 5
    table = CliRunner().invoke(app, ["review", root])
    assert table.exit_code == 0 and "75.0%" in table.output
    bad = CliRunner().invoke(app, ["review", root, "--set", "nope"])
    assert bad.exit_code == 2 and "no set 'nope'" in bad.output


def test_studio_refuses_public_host_without_auth_and_bad_auth(review_ws):
    root = str(review_ws.root)
    r = CliRunner().invoke(app, ["studio", root, "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "--auth" in r.output
    r = CliRunner().invoke(app, ["studio", root, "--host", "0.0.0.0", "--auth", "ann"])
    assert r.exit_code == 2 and "USER:PASS" in r.output
    assert not (review_ws.root / LOCK_NAME).exists()


def test_second_studio_on_a_workspace_is_refused(review_ws):
    lock = acquire_lock(review_ws.root)  # this test process plays the first studio
    try:
        before = sorted(p.name for p in review_ws.root.iterdir())
        r = subprocess.run([sys.executable, "-m", "craftlora.cli.main", "studio",
                            str(review_ws.root), "--port", "1"], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2
        assert f"already running on this workspace (pid {os.getpid()}" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert sorted(p.name for p in review_ws.root.iterdir()) == before
        assert lock.read_text().strip() == str(os.getpid())
    finally:
        release_lock(lock)
    assert not lock.exists()


def test_stale_lock_of_a_dead_process_is_taken_over(review_ws):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (review_ws.root / LOCK_NAME).write_text(dead + "\n")
    lock = acquire_lock(review_ws.root)
    assert lock.read_text().strip() == str(os.getpid())
    release_lock(lock)


def test_studio_command_serves_on_loopback_and_releases_its_lock(review_ws):
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "craftlora.cli.main", "studio",
                             str(review_ws.root), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.3)
        assert r.status_code == 200 and "craftlora studio" in r.text
        lock = review_ws.root / LOCK_NAME
        assert lock.read_text().strip() == str(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert not lock.exists()
