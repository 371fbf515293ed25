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
    kind: str | None = None,
) -> Path:
    """``explicit`` when given; else the file registered for ``kind`` (``craftlora weights``);
    else the first existing file among ``names`` in ``dirs`` (the torch hub cache).

    Raises MissingWeightsError naming every place tried and the command that registers one.
    """
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise MissingWeightsError(f"{what}: weights file {p} does not exist")
        return p
    if kind is not None and kind in read_registry():
        return registered(kind, what=what)
    tried = list(dirs) if dirs is not None else torch_checkpoint_dirs()
    for d in tried:
        for name in names:
            if (d / name).is_file():
                return d / name
    raise MissingWeightsError(
        f"{what}: weights not found; expected one of {list(names)} in "
        f"{[str(d) for d in tried]}"
        + (f"; register a local copy with `craftlora weights add {kind} PATH`" if kind else
           " (copy the file there or pass its path)")
        + "; nothing is downloaded and no other network is substituted"
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


# -- the registry of local weight files (``craftlora weights``) ------------------------------

REGISTRY_ENV = "CRAFTLORA_WEIGHTS"
KINDS = {
    "vgg19": "torchvision VGG-19 ImageNet state dict (perceptual loss)",
    "vgg16": "torchvision VGG-16 ImageNet state dict (LPIPS-vgg backbone)",
    "alexnet": "torchvision AlexNet ImageNet state dict (LPIPS-alex backbone)",
    "inception": "pytorch-fid pt_inception-2015-12-05 state dict (FID)",
    "clip": "a transformers CLIPModel folder (config.json + model.safetensors; CLIP score)",
}


def registry_path() -> Path:
    """``$CRAFTLORA_WEIGHTS`` if set, else ``$XDG_CONFIG_HOME/craftlora/weights.json``
    (``~/.config/craftlora/weights.json``)."""
    env = os.environ.get(REGISTRY_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "craftlora" / "weights.json"


def read_registry(path: Path | None = None) -> dict[str, dict[str, str]]:
    """kind → {"path", "sha256", "format"}; an absent file is an empty registry."""
    import json

    path = path or registry_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: the weights registry is not valid JSON ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("weights"), dict):
        raise ValueError(f"{path}: the weights registry has no 'weights' table")
    return data["weights"]


def _write_registry(entries: dict[str, dict[str, str]], path: Path) -> None:
    from craftlora.data.atomic import atomic_write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"version": 1, "weights": entries})


def _torchvision_shapes(kind: str) -> dict[str, tuple[int, ...]]:
    """Key → shape of the network each kind must fit (built on the meta device)."""
    from torchvision import models

    if kind == "inception":
        from craftlora.metrics.inception import fid_inception_v3

        build = fid_inception_v3
    else:
        build = {"vgg19": models.vgg19, "vgg16": models.vgg16, "alexnet": models.alexnet}[kind]
    with torch.device("meta"):
        net = build() if kind == "inception" else build(weights=None)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def _file_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Key → shape of a state-dict file, read safely (safetensors header, or weights_only)."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    try:
        sd = torch.load(path, map_location="meta", weights_only=True)
    except Exception as e:  # a pickle that is more than tensors, or not a torch file at all
        raise MissingWeightsError(f"{path}: not a state dict that loads with "
                                  f"weights_only=True: {str(e).splitlines()[0]}") from e
    if not isinstance(sd, dict):
        raise MissingWeightsError(f"{path}: holds {type(sd).__name__}, not a state dict")
    return {k: tuple(v.shape) for k, v in sd.items()
            if torch.is_tensor(v) and not k.endswith("num_batches_tracked")}


def _clip_problem(folder: Path) -> str | None:
    """Why a folder is not a loadable transformers CLIPModel, or None."""
    import json

    cfg = folder / "config.json"
    if not cfg.is_file():
        return "no config.json"
    try:
        model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
    except ValueError as e:
        return f"config.json is not valid JSON ({e})"
    if model_type != "clip":
        return f"config.json has model_type {model_type!r}, not 'clip'"
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return "no .safetensors weights (pickle .bin files are not read)"
    keys = set().union(*(_file_shapes(f) for f in files))
    for need in ("text_projection.weight", "visual_projection.weight"):
        if need not in keys:
            return f"the weights lack {need}"
    return None


def detect_kind(path: str | os.PathLike[str]) -> str | None:
    """Which registered kind a file or folder is, by its structure; None if none fits."""
    path = Path(path)
    if path.is_dir():
        return "clip" if _clip_problem(path) is None else None
    try:
        shapes = _file_shapes(path)
    except Exception:  # noqa: BLE001  unreadable, or safetensors' own header errors
        return None
    for kind in ("vgg19", "vgg16", "alexnet", "inception"):
        if shapes == _torchvision_shapes(kind):
            return kind
    return None


def _structure_problem(kind: str, path: Path) -> str | None:
    if kind == "clip":
        return _clip_problem(path) if path.is_dir() else "a CLIP model is a folder"
    if not path.is_file():
        return f"not a file ({kind} weights are one .pth or .safetensors state dict)"
    want, have = _torchvision_shapes(kind), _file_shapes(path)
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if missing or extra or wrong:
        return (f"does not fit {kind}: {len(missing)} missing (e.g. {missing[:2]}), "
                f"{len(extra)} unexpected (e.g. {extra[:2]}), {len(wrong)} of the wrong shape "
                f"(e.g. {wrong[:2]})")
    return None


def weights_fingerprint(path: Path) -> str:
    """sha256 of a weights file, or of every file in a model folder (names and bytes)."""
    if path.is_dir():
        return combined_sha256(f"{p.name}:{file_sha256(p)}" for p in sorted(path.iterdir())
                               if p.is_file())
    return file_sha256(path)


def add_weights(kind: str, path: str | os.PathLike[str], *,
                registry: Path | None = None) -> dict[str, str]:
    """Check ``path`` fits ``kind``, hash it, record it; returns the entry."""
    if kind not in KINDS:
        raise ValueError(f"unknown weights kind {kind!r}; known: {sorted(KINDS)}")
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise MissingWeightsError(f"{p}: no such file or folder")
    problem = _structure_problem(kind, p)
    if problem:
        raise MissingWeightsError(f"{p}: {problem}")
    registry = registry or registry_path()
    entries = read_registry(registry)
    entry = {"path": str(p), "sha256": weights_fingerprint(p), "format": p.suffix or "folder"}
    entries[kind] = entry
    _write_registry(entries, registry)
    return entry


def check_weights(*, registry: Path | None = None) -> list[dict[str, str]]:
    """Re-hash and load every registered entry; one row per kind with ``status`` ok or the
    reason it fails (the other entries are still checked)."""
    rows = []
    for kind, e in sorted(read_registry(registry).items()):
        p, status = Path(e["path"]), "ok"
        try:
            if not p.exists():
                status = "missing: the file or folder is gone"
            elif weights_fingerprint(p) != e["sha256"]:
                status = "changed: sha256 differs from the one recorded at add"
            else:
                _load_check(kind, p)
        except Exception as ex:  # noqa: BLE001  a row per entry, whatever the fault
            status = f"unreadable: {str(ex).splitlines()[0]}"
        rows.append({"kind": kind, **e, "status": status})
    return rows


def _load_check(kind: str, path: Path) -> None:
    if kind == "clip":
        from transformers import CLIPModel

        CLIPModel.from_pretrained(path, local_files_only=True, use_safetensors=True)
        return
    problem = _structure_problem(kind, path)
    if problem:
        raise MissingWeightsError(problem)
    load_state_dict(path, what=kind)  # reads every tensor safely, checks they are finite


def registered(kind: str, *, what: str, registry: Path | None = None) -> Path:
    """The registered path for ``kind``; missing → an error naming the command that adds it."""
    entry = read_registry(registry).get(kind)
    if entry is None or not Path(entry["path"]).exists():
        why = "is not registered" if entry is None else f"is registered at {entry['path']}, " \
            "which no longer exists"
        raise MissingWeightsError(
            f"{what}: {kind} {why}; add a local copy with "
            f"`craftlora weights add {kind} PATH` ({KINDS[kind]}); nothing is downloaded")
    return Path(entry["path"])
