"""Ingest under faults: odd and non-UTF-8 names, hostile files, two runs at once, SIGKILL at
random points, a full disk. Each compares the catalog with an uninterrupted run where it can:
nothing lost, nothing duplicated, an intact catalog, one clear line for what was refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from craftlora.catalog.names import fs_name
from craftlora.catalog.records import RECORD_SUFFIX
from craftlora.data.atomic import TMP_PREFIX, remove_orphan_temps


def _init(fx, ws: Path, *extra: str) -> None:
    r = fx.run_cli("init", ws, "-a", "glaze=a,b", *extra)
    assert r.exit_code == 0, r.output


def _labels(src: Path, names: list[str]) -> None:
    (src / "labels.csv").write_text("file,glaze\n" + "".join(
        f"{n},{'ab'[i % 2]}\n" for i, n in enumerate(names)))


def _tidy(fx, ws: Path) -> list[tuple]:
    """The catalog's rows, after asserting every file under images/ is a catalogued copy or
    its record: no uncatalogued copy, no temp file, no copy twice."""
    rows = fx.catalog_rows(ws / "catalog.sqlite")
    paths = {r[3] for r in rows}
    assert len(paths) == len(rows) == len({r[0] for r in rows})
    assert fx.content_files(ws) == paths | {p + RECORD_SUFFIX for p in paths}
    return rows


def _ingest_process(ws: Path, src: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "craftlora.cli.main", "ingest", str(ws), str(src), "--json",
           *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True)


def _count(db_path: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM images").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def test_non_utf8_and_odd_names_are_catalogued_losslessly(tmp_path, fx):
    src = tmp_path / "src"
    fx.write_pngs(src, 6)
    odd = [b"caf\xe9 \xff.png", b"space name.png", b"-dash.png",
           "青花 vase.PNG".encode(), b"back\\slash\\x41.png", b"new\nline.png"]
    for i, raw in enumerate(odd):
        os.replace(src / f"{i:03d}.png", os.path.join(os.fsencode(src), raw))
    os.symlink("nowhere", os.path.join(os.fsencode(src), b"dangling \xfe.png"))
    (Path(os.fsdecode(os.path.join(os.fsencode(src), b"empty \xfd.png")))).write_bytes(b"")
    (src / "[").mkdir()
    (src / "[" / "b] odd.png").write_bytes(b"")  # "[/b]": rich markup in a path
    ws = tmp_path / "ws"
    _init(fx, ws)

    r = fx.run_cli("ingest", ws, src, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["ingested"] == len(odd)
    assert sorted((x["path"], x["reason"]) for x in out["rejected"]) == [
        ("[/b] odd.png", "empty file"), ("dangling \\xfe.png", "broken symlink"),
        ("empty \\xfd.png", "empty file")]
    rows = _tidy(fx, ws)
    for _sha, source, *_ in rows:  # the stored name leads back to the very file
        assert (src / fs_name(source)).read_bytes() in {(ws / p).read_bytes() for *_, p, _ in rows}
    assert {fs_name(r[1]) for r in rows} == {os.fsdecode(o) for o in odd}

    r = fx.run_cli("ingest", ws, src)  # the table output too, and a rerun adds nothing
    assert r.exit_code == 0 and "[/b] odd.png" in r.stdout, r.output
    assert _tidy(fx, ws) == rows


def test_hostile_files_report_their_real_defect_with_a_labels_file(tmp_path, fx):
    src = tmp_path / "src"
    names = fx.write_pngs(src, 4)
    _labels(src, names)
    good = (src / names[0]).read_bytes()
    (src / "empty.png").write_bytes(b"")
    (src / "truncated.png").write_bytes(good[: len(good) // 2])
    (src / "notes.png").write_text("not an image")
    Image.new("RGB", (200, 200)).save(src / "bomb.png")
    fx.write_pngs(src / "extra", 1, seed=9)
    ws = tmp_path / "ws"
    _init(fx, ws)
    toml = ws / "craftlora.toml"
    toml.write_text(toml.read_text().replace("max_pixels = 40000000", "max_pixels = 10000"))

    r = fx.run_cli("ingest", ws, src, "--json")
    assert r.exit_code == 0, r.output
    reasons = {x["path"]: x["reason"] for x in json.loads(r.stdout)["rejected"]}
    assert reasons["empty.png"] == "empty file"
    assert reasons["truncated.png"].startswith("truncated")
    assert reasons["notes.png"].startswith("not an image")
    assert reasons["bomb.png"].startswith("decompression bomb")
    assert reasons["extra/000.png"].startswith("not listed in the labels file")
    assert len(_tidy(fx, ws)) == 4  # an unlisted file is checked, never copied


def test_two_ingests_at_once_lose_and_duplicate_nothing(tmp_path, fx):
    src = tmp_path / "src"
    names = fx.write_pngs(src, 240)
    _labels(src, names)
    ws = tmp_path / "ws"
    _init(fx, ws)
    live = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    (ws / "images" / "zz").mkdir(parents=True)
    live_tmp = ws / "images" / "zz" / f"{TMP_PREFIX}{live.pid}-x.png"
    dead_tmp = ws / "images" / "zz" / f"{TMP_PREFIX}{dead.pid}-y.png"
    live_tmp.write_bytes(b"being written")
    dead_tmp.write_bytes(b"left by a killed run")
    try:
        assert remove_orphan_temps(ws / "images") == 1
        assert live_tmp.exists() and not dead_tmp.exists()  # a live writer's temp stays
    finally:
        live.kill()
        live.wait()
    live_tmp.unlink()

    runs = [_ingest_process(ws, src, "--commit-every", "4") for _ in range(2)]
    outs = []
    for p in runs:
        stdout, stderr = p.communicate(timeout=240)
        assert p.returncode == 0, stderr
        outs.append(json.loads(stdout))
    for out in outs:
        assert out["rejected"] == [], out["rejected"][:3]
        assert out["ingested"] + out["already_present"] == len(names)
    assert sum(o["ingested"] for o in outs) == len(names)
    rows = _tidy(fx, ws)
    assert [r[1] for r in rows] != [] and sorted(r[1] for r in rows) == names


def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(tmp_path, fx):
    src = tmp_path / "src"
    names = fx.write_pngs(src, 300)
    _labels(src, names)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for ws in (straight, killed):
        _init(fx, ws)
    assert fx.run_cli("ingest", straight, src, "--json").exit_code == 0

    rng = np.random.default_rng(22)
    kills = 0
    for at in sorted(rng.integers(1, 250, size=3)):
        proc = _ingest_process(killed, src, "--commit-every", "4")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if _count(killed / "catalog.sqlite") >= at:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait()
        with contextlib.suppress(ProcessLookupError):  # its forked workers, too
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()  # EOF only once no worker holds the pipes
        kills += proc.returncode == -signal.SIGKILL
    assert kills >= 2, "ingest ran to the end before it could be killed"
    r = fx.run_cli("ingest", killed, src, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["rejected"] == [], r.output
    assert _tidy(fx, killed) == _tidy(fx, straight)


def test_full_disk_stops_in_one_line_and_leaves_nothing_half_written(tmp_path, fx):
    src = tmp_path / "src"
    names = fx.write_pngs(src, 48, size=48)  # about 7 kB each: more than the disk holds
    _labels(src, names)
    straight = tmp_path / "straight"
    _init(fx, straight)
    assert fx.run_cli("ingest", straight, src, "--json").exit_code == 0
    with fx.mounted(tmp_path / "disk", "size=256k") as disk:
        ws = disk / "ws"
        _init(fx, ws)
        r = fx.run_cli("ingest", ws, src, "--json", "--commit-every", "8")
        fx.one_error_line(r, str(ws), "disk full", "rerun")
        part = _tidy(fx, ws)  # intact, and no uncatalogued copy left behind
        assert len(part) < len(names)
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        r = fx.run_cli("ingest", ws, src, "--json")
        assert r.exit_code == 0, r.output
        assert _tidy(fx, ws) == _tidy(fx, straight)
