"""What the studio refuses before it starts: a non-loopback host without a login, and a second
studio on the same workspace (a lock file holding the first one's pid)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from craftlora.data.atomic import pid_alive

LOCK_NAME = ".studio.lock"


class StudioError(RuntimeError):
    """The studio cannot start or serve as asked; the message says why."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """``USER:PASS`` → (user, password); None when no login is asked for."""
    if auth is None:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise StudioError("--auth must be USER:PASS (both non-empty)")
    return user, password


def check_host(host: str, auth: tuple[str, str] | None) -> None:
    if not is_loopback(host) and auth is None:
        raise StudioError(f"--host {host} is reachable from other machines; give --auth "
                          "USER:PASS to serve there (or keep the default 127.0.0.1)")


def acquire_lock(root: Path) -> Path:
    """Create ``ROOT/.studio.lock`` with this pid; StudioError when a live studio holds it."""
    lock = Path(root) / LOCK_NAME
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            text = lock.read_text(encoding="utf-8", errors="replace").strip()
            pid = int(text) if text.isdigit() else 0
            if pid and pid != os.getpid() and pid_alive(pid):
                raise StudioError(f"{root}: a studio is already running on this workspace "
                                  f"(pid {pid}, lock {lock}); use that one or stop it") from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return lock
    raise StudioError(f"{lock}: cannot take the studio lock")


def release_lock(lock: Path) -> None:
    text = lock.read_text(encoding="utf-8", errors="replace").strip() if lock.exists() else ""
    if text == str(os.getpid()):
        lock.unlink(missing_ok=True)
