"""Find pretrained weight files on this machine and fingerprint them. Never downloads."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import torch

from craftlora.data.imageio import sha256_file


class MissingWeightsError(FileNotFoundError):
    """A feature network's weights are not on this machine; the message names the file."""


def torch_checkpoint_dirs() -> list[Path]:
    """Where torch hub / torchvision keep downloaded weights (``$TORCH_HOME`` honoured)."""
    dirs = [Path(torch.hub.get_dir()) / "checkpoints"]
    home = Path(os.path.expanduser("~/.cache/torch/hub/checkpoints"))
    if home not in dirs:
        dirs.append(home)
    return dirs


def find_weights(
    names: Sequence[str],
    *,
    explicit: str | os.PathLike[str] | None = None,
    dirs: Iterable[Path] | None = None,
    what: str,
) -> Path:
    """The first existing file among ``names`` in ``dirs`` (or ``explicit`` when given).

    Raises MissingWeightsError naming every file and folder that was tried.
    """
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise MissingWeightsError(f"{what}: weights file {p} does not exist")
        return p
    tried = list(dirs) if dirs is not None else torch_checkpoint_dirs()
    for d in tried:
        for name in names:
            if (d / name).is_file():
                return d / name
    raise MissingWeightsError(
        f"{what}: weights not found; expected one of {list(names)} in "
        f"{[str(d) for d in tried]} (copy the file there or pass its path); nothing is "
        "downloaded and no other network is substituted"
    )


@lru_cache(maxsize=64)
def _sha_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (cached per path, size and mtime)."""
    st = os.stat(path)
    return _sha_cached(os.fspath(path), st.st_size, st.st_mtime_ns)


def combined_sha256(parts: Iterable[str]) -> str:
    """One fingerprint for weights that come from several files."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


def load_state_dict(path: Path, *, what: str) -> dict[str, torch.Tensor]:
    """A plain state dict from ``.safetensors`` or ``torch.load(weights_only=True)``."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(path))
    else:
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # corrupt file or a pickle that is more than tensors
            raise MissingWeightsError(f"{what}: {path} is not a readable state dict: {e}") from e
    if not isinstance(sd, dict):
        raise MissingWeightsError(f"{what}: {path} holds {type(sd).__name__}, not a state dict")
    bad = [k for k, v in sd.items() if torch.is_tensor(v) and v.is_floating_point()
           and not torch.isfinite(v).all()]
    if bad:
        raise MissingWeightsError(f"{what}: {path} has non-finite values in {bad[:5]}")
    return sd
