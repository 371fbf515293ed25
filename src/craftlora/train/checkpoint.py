"""Crash-safe training checkpoints.

A checkpoint is a folder ``step-00000050`` holding ``trainable.safetensors``, ``optimizer.pt``,
``scheduler.pt``, ``rng.pt`` (one RNG state per process), ``state.json`` and, last, ``COMPLETE``
(the sha256 of every other file). It is written as a temp folder and renamed into place; it
counts only once ``COMPLETE`` is there and every file matches its hash. ``latest`` is the
newest such folder. Older ones are pruned only after the new one verifies.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from craftlora.data.imageio import sha256_file

MARKER = "COMPLETE"
_STEP = re.compile(r"step-(\d{8})")
TMP_PREFIX = ".tmp-step-"
FULL_BELOW = 1 << 20  # bytes free under which a failed write is put down to a full disk


class CheckpointError(RuntimeError):
    """No usable checkpoint, or one that fails verification."""


def step_dir(root: Path, step: int) -> Path:
    return Path(root) / f"step-{step:08d}"


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify(folder: Path) -> bool:
    """True when ``COMPLETE`` exists, every listed file matches its hash and tensors are finite."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return False
    try:
        listed = json.loads(marker.read_text())["files"]
        for name, sha in listed.items():
            p = Path(folder) / name
            if not p.is_file() or sha256_file(p) != sha:
                return False
        sd = load_file(str(Path(folder) / "trainable.safetensors"))
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return False
    except Exception:  # safetensors raises its own error type for a damaged file
        return False
    return all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())


def complete_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every folder with a ``COMPLETE`` marker, oldest first (not verified)."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        m = _STEP.fullmatch(p.name)
        if m and (p / MARKER).is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest(root: Path) -> Path | None:
    """The newest checkpoint that verifies, or None."""
    for _, p in reversed(complete_checkpoints(root)):
        if verify(p):
            return p
    return None


def clean_partial(root: Path) -> int:
    """Remove temp folders and marker-less step folders a killed writer left; return count."""
    root = Path(root)
    n = 0
    if not root.is_dir():
        return 0
    for p in root.iterdir():
        if p.is_dir() and (p.name.startswith(TMP_PREFIX) or
                           (_STEP.fullmatch(p.name) and not (p / MARKER).is_file())):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n


def save_checkpoint(
    root: Path,
    step: int,
    *,
    trainable: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    scheduler: dict[str, Any],
    rng: list[dict[str, Any]],
    state: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write, rename into place, verify, then prune to the newest ``keep_last`` complete ones."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = step_dir(root, step)
    if final.is_dir() and verify(final):
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{step:08d}-", dir=root))
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in trainable.items()},
                  str(tmp / "trainable.safetensors"))
        torch.save(optimizer, tmp / "optimizer.pt")
        torch.save(scheduler, tmp / "scheduler.pt")
        torch.save(rng, tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=2))
        files = {}
        for name in ("trainable.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt",
                     "state.json"):
            _fsync_file(tmp / name)
            files[name] = sha256_file(tmp / name)
        (tmp / MARKER).write_text(json.dumps({"step": step, "files": files}, indent=2))
        _fsync_file(tmp / MARKER)
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)  # an earlier, unverifiable attempt at this step
        os.replace(tmp, final)
        _fsync_dir(root)
    except Exception as e:  # disk full, read-only: one line, the previous checkpoints intact
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"{final}: checkpoint not written ({_write_failure(e, root)}); "
                              "the earlier checkpoints are intact") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not verify(final):
        raise CheckpointError(f"{final}: checkpoint failed verification after writing")
    for s, p in complete_checkpoints(root)[:-keep_last]:
        if s < step:
            shutil.rmtree(p, ignore_errors=True)
    return final


def load_checkpoint(folder: Path) -> dict[str, Any]:
    """Everything in a verified checkpoint (torch files read with ``weights_only=True``)."""
    folder = Path(folder)
    if not verify(folder):
        raise CheckpointError(f"{folder}: incomplete or damaged checkpoint")
    return {
        "trainable": load_file(str(folder / "trainable.safetensors")),
        "optimizer": _load_tensors_only(folder / "optimizer.pt"),
        "scheduler": _load_tensors_only(folder / "scheduler.pt"),
        "rng": _load_tensors_only(folder / "rng.pt"),
        "state": json.loads((folder / "state.json").read_text()),
        "path": folder,
    }


def _load_tensors_only(path: Path) -> Any:
    """``torch.load(weights_only=True)``; anything else in the file is a one-line error."""
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol: we refuse it below anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as e:
        raise CheckpointError(
            f"{path}: refused, holds more than tensors and plain values (a pickle payload "
            f"that weights_only loading blocks: {_first_line(e)})") from e


def _write_failure(e: BaseException, root: Path) -> str:
    """Why a write failed, in words: torch and safetensors report a full disk obscurely."""
    free = shutil.disk_usage(root).free
    if (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space" in str(e) or \
            free < FULL_BELOW:
        return f"no space left on the device, {free // 1024} KiB free"
    return _first_line(e)


def _first_line(e: BaseException) -> str:
    """The line of torch's long message that names what was blocked, else the first one."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    named = [ln for ln in lines if "Unsupported" in ln or "GLOBAL" in ln]
    return (named or lines or [type(e).__name__])[0][:200]
