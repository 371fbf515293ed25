"""One loader for every model source; nothing downstream knows which one it came from.

Sources (a string):

- ``mini`` (alias ``mini-base``): the bundled tiny base in ``craftlora/mini/base`` (a diffusers
  folder, see its README for the model card);
- a local diffusers folder (has ``model_index.json``);
- a single-file SD 1.5 / 2.x / SDXL checkpoint (``.safetensors``; ``.ckpt`` is refused because
  it is a pickle) in the original LDM key layout A1111 / ComfyUI use, always loaded without the
  hub. Its family is read from the header (``craftlora.models.family``) and its component configs
  come from the configs shipped for that family, or from ``config=`` (a local diffusers folder
  of the same architecture; its weights are not read). A single file holds no tokenizer: the
  vocabulary comes from ``config``'s ``tokenizer*/`` folders when they have one, else from
  ``tokenizer=`` (a folder with CLIP's ``vocab.json`` + ``merges.txt``, or a diffusers model
  folder; every SD family uses the same vocabulary). SD 2.x files count as 768 px
  v-prediction unless ``prediction_type="epsilon"``. ``craftlora.models.ldm_layout`` and
  ``ldm_families`` write such files;
- a hub id (``org/name``) only when the machine can reach the hub.

``prediction_type`` (``epsilon`` / ``v_prediction``) overrides the scheduler's for any source.

A string is a path when it starts with ``.``, ``/`` or ``~``, has a file extension, or exists;
it is a hub id only when it reads ``owner/name``, does not exist locally and the machine is not
offline. A missing path is reported as such, never sent to the hub.

Pickle weights are refused everywhere, in a folder too: a diffusers folder whose component
has ``*.bin`` / ``*.ckpt`` / ``*.pt`` weights and no ``*.safetensors`` is not loaded, even though
``torch.load(weights_only=True)`` could read a tensors-only file, because one loader rule
("safetensors only") is easier to trust than a per-file judgement. The error says how to convert.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from craftlora.models.family import (
    CheckpointLayoutError,
    config_for,
    inspect_checkpoint,
    shipped_config,
)

MINI_BASE = Path(__file__).resolve().parent.parent / "mini" / "base"
MINI_NAMES = ("mini", "mini-base")
SINGLE_FILE_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")


class ModelSourceError(ValueError):
    """The model source is missing, of an unknown kind, unsafe, or needs the network."""


@dataclass
class Components:
    """The parts of an SD-family model a trainer or generator needs."""

    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    noise_scheduler: Any
    kind: str = "sd"  # "sd" (1.x / 2.x) or "sdxl"
    source: str = ""
    text_encoder_2: Any = None
    tokenizer_2: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_sdxl(self) -> bool:
        return self.kind == "sdxl"

    @property
    def prediction_type(self) -> str:
        return str(self.noise_scheduler.config.prediction_type)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def text_encoders(self) -> list[Any]:
        return [t for t in (self.text_encoder, self.text_encoder_2) if t is not None]

    def pipeline(self, scheduler: Any = None):
        """A diffusers text-to-image pipeline over these (shared, not copied) components."""
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

        sched = scheduler or self.noise_scheduler
        if self.is_sdxl:
            pipe = StableDiffusionXLPipeline(
                vae=self.vae, text_encoder=self.text_encoder, text_encoder_2=self.text_encoder_2,
                tokenizer=self.tokenizer, tokenizer_2=self.tokenizer_2, unet=self.unet,
                scheduler=sched,
            )
        else:
            pipe = StableDiffusionPipeline(
                vae=self.vae, text_encoder=self.text_encoder, tokenizer=self.tokenizer,
                unet=self.unet, scheduler=sched, safety_checker=None, feature_extractor=None,
                requires_safety_checker=False,
            )
        pipe.set_progress_bar_config(disable=True)
        return pipe


def device_name(device: torch.device | str) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H200)``: where a model ran, for run records and benchmarks."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def module_hash(module: torch.nn.Module, config: Any = None) -> str:
    """sha256 over a module's config and every tensor of its state dict (names, dtypes, bytes)."""
    h = hashlib.sha256()
    if config is not None:
        h.update(repr(sorted(dict(config).items())).encode())
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _from_pipeline(pipe: Any, source: str) -> Components:
    from diffusers import DDPMScheduler

    kind = "sdxl" if getattr(pipe, "text_encoder_2", None) is not None else "sd"
    noise = DDPMScheduler.from_config(pipe.scheduler.config)
    return Components(
        unet=pipe.unet, vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer,
        noise_scheduler=noise, kind=kind, source=source,
        text_encoder_2=getattr(pipe, "text_encoder_2", None),
        tokenizer_2=getattr(pipe, "tokenizer_2", None),
    )


def convert_hint(path: Path) -> str:
    """The one-line command that turns a pickle checkpoint into a ``.safetensors`` file."""
    out = path.with_suffix(".safetensors")
    return ("python -c \"import torch; from safetensors.torch import save_file; "
            f"sd = torch.load('{path}', map_location='cpu', weights_only=True); "
            "sd = sd.get('state_dict', sd); save_file({k: v.contiguous() for k, v in sd.items() "
            f"if torch.is_tensor(v)}}, '{out}')\"")


def looks_like_path(src: str) -> bool:
    """True for a string meant as a file or folder (see the module doc), not a hub id."""
    return (src.startswith((".", "/", "~")) or Path(src).suffix != "" or src.count("/") != 1
            or Path(src).expanduser().exists())


def _refuse_pickle_weights(folder: Path) -> None:
    """Raise when a component of a diffusers folder has only pickle-format weights."""
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = [p for p in sub.iterdir() if p.is_file()]
        pickles = [p for p in files if p.suffix in PICKLE_SUFFIXES]
        if pickles and not any(p.suffix == ".safetensors" for p in files):
            raise ModelSourceError(
                f"{pickles[0]}: pickle-format weights are refused (they can run code); convert "
                "the folder once where you trust it: DiffusionPipeline.from_pretrained(DIR)"
                ".save_pretrained(NEW_DIR, safe_serialization=True)")


@dataclass(frozen=True)
class SourceInfo:
    """Where a model source points and what it is, found without reading any weights."""

    kind: str  # "folder", "single_file" or "hub"
    path: str
    family: str = ""  # "sd" or "sdxl" when known from the layout


def locate_source(
    source: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | None = None,
    allow_network: bool | None = None,
) -> SourceInfo:
    """Check a model source's kind and layout (no weights read); raise ModelSourceError."""
    src = str(source)
    if allow_network is None:
        allow_network = os.environ.get("HF_HUB_OFFLINE", "0") not in ("1", "true", "True")
    if src in MINI_NAMES:
        if not (MINI_BASE / "model_index.json").is_file():
            raise ModelSourceError(
                f"the bundled mini base is not present in {MINI_BASE}; build it with "
                "`python recipes/build_mini_base.py --work WORK --out "
                "src/craftlora/mini/base` (see its model card)"
            )
        return locate_source(MINI_BASE, allow_network=False)
    path = Path(src).expanduser()
    if path.is_dir():
        return SourceInfo("folder", str(path), _check_folder(path))
    if path.suffix in PICKLE_SUFFIXES:
        raise ModelSourceError(
            f"{path}: pickle-based checkpoints are refused (they can run code); convert it "
            "once to .safetensors where you trust it: " + convert_hint(path))
    if path.suffix in SINGLE_FILE_SUFFIXES:
        if not path.is_file():
            raise ModelSourceError(f"{path}: no such model file (checkpoint file not found)")
        try:
            info = inspect_checkpoint(path)
            if config is None:
                config_for(info)  # its sizes match a shipped config (SD 2.x: either one)
        except CheckpointLayoutError as e:
            raise ModelSourceError(str(e)) from e
        if config is not None and not (Path(config) / "model_index.json").is_file():
            raise ModelSourceError(f"{config}: the model config must be a local diffusers "
                                   "folder (no model_index.json)")
        return SourceInfo("single_file", str(path), "sdxl" if info.family == "sdxl" else "sd")
    if path.exists():
        raise ModelSourceError(
            f"{src}: not a model source (expected 'mini' / 'mini-base', a diffusers folder, a "
            ".safetensors checkpoint or a hub id)")
    if looks_like_path(src):
        raise ModelSourceError(
            f"{path}: no such model folder or file (expected 'mini', a diffusers folder or a "
            ".safetensors checkpoint)")
    if not allow_network:
        raise ModelSourceError(
            f"{src}: no such model folder or file, and not looked up as a hub id because this "
            "machine is offline (HF_HUB_OFFLINE=1 or allow_network=False); point the config "
            "at a local folder or .safetensors file")
    return SourceInfo("hub", src)


def _check_folder(folder: Path) -> str:
    """A diffusers folder: index, every listed component present, no pickle-only weights."""
    import json

    index_path = folder / "model_index.json"
    if not index_path.is_file():
        raise ModelSourceError(f"{folder}: a folder but not a diffusers model (no model_index.json)")  # noqa: E501
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelSourceError(f"{index_path}: not valid JSON ({e})") from e
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        if not (folder / part).is_dir():
            raise ModelSourceError(f"{folder}: no {part}/ folder (not an SD-family diffusers "
                                   "model, or an incomplete copy)")
    _refuse_pickle_weights(folder)
    return "sdxl" if "text_encoder_2" in index else "sd"


def load_components(
    source: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | None = None,
    tokenizer: str | os.PathLike[str] | None = None,
    prediction_type: str | None = None,
    dtype: torch.dtype = torch.float32,
    allow_network: bool | None = None,
) -> Components:
    """Load an SD-family model from any supported source (see module doc)."""
    if prediction_type is not None:
        shipped_config("sd15", prediction_type)  # validates the name before anything is read
    found = locate_source(source, config=config, allow_network=allow_network)
    if found.kind != "single_file" and (config is not None or tokenizer is not None):
        raise ModelSourceError(f"{source}: a model config or tokenizer folder is for single-file "
                               f"checkpoints; this {found.kind} brings its own (drop it)")
    if found.kind == "single_file":
        pipe = _load_single_file(Path(found.path), config=config, tokenizer=tokenizer,
                                 prediction_type=prediction_type, dtype=dtype)
    elif found.kind == "hub":
        pipe = _load_hub(found.path, dtype)
    else:
        pipe = _load_folder(Path(found.path), found.family, dtype)
    if prediction_type is not None:
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config,
                                                          prediction_type=prediction_type)
    return _from_pipeline(pipe, found.path)


def _load_folder(folder: Path, family: str, dtype: torch.dtype) -> Any:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    kw: dict[str, Any] = {"local_files_only": True, "dtype": dtype, "use_safetensors": True}
    cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    if cls is StableDiffusionPipeline:
        kw.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return cls.from_pretrained(str(folder), **kw)


def _load_hub(src: str, dtype: torch.dtype) -> Any:
    from diffusers import DiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    before = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # its connection warnings would add lines
    try:
        pipe = DiffusionPipeline.from_pretrained(src, dtype=dtype, use_safetensors=True)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelSourceError(
            f"{src}: no such model folder or file, and not loadable as a hub id ({first})"
        ) from e
    finally:
        diffusers_logging.set_verbosity(before)
    return pipe


def _load_single_file(path: Path, *, config, tokenizer, prediction_type, dtype) -> Any:
    """A pipeline from an LDM single file, its configs from ``config`` or the shipped ones."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.utils import logging as diffusers_logging

    info = inspect_checkpoint(path)
    try:
        folder = Path(config) if config is not None else config_for(info, prediction_type)
    except CheckpointLayoutError as e:
        raise ModelSourceError(str(e)) from e
    sdxl = info.family == "sdxl"
    if sdxl != (folder / "text_encoder_2").is_dir():
        raise ModelSourceError(f"{folder}: a config of another family than {path} "
                               f"({info.family}); pass one of the same architecture")
    names = ("tokenizer", "tokenizer_2") if sdxl else ("tokenizer",)
    kw: dict[str, Any] = {"dtype": dtype, "config": str(folder), "local_files_only": True,
                          **_tokenizers(path, folder, tokenizer, names)}
    cls = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
    if not sdxl:
        kw.update(safety_checker=None, requires_safety_checker=False)
    before = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # its dtype casts warn although nothing changes
    try:
        return cls.from_single_file(str(path), **kw)
    except (RuntimeError, ValueError, KeyError, OSError) as e:  # sizes or names that differ
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise ModelSourceError(f"{path}: does not load with the configs in {folder} ({first}); "
                               "pass --model-config DIR of the same architecture") from e
    finally:
        diffusers_logging.set_verbosity(before)


def has_vocabulary(folder: Path) -> bool:
    """A tokenizer folder with CLIP's vocabulary (``tokenizer.json``, or vocab + merges)."""
    return (folder / "tokenizer.json").is_file() or (
        (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file())


def _tokenizers(path: Path, folder: Path, tokenizer: str | os.PathLike[str] | None,
                names: tuple[str, ...]) -> dict[str, Any]:
    """Tokenizers the config folder lacks a vocabulary for, built from ``tokenizer``.

    Special tokens and length come from the config's ``tokenizer*/tokenizer_config.json`` (SD 2.x
    and SDXL's second tokenizer pad with ``!``), the vocabulary from ``tokenizer``.
    """
    from transformers import CLIPTokenizer

    out: dict[str, Any] = {}
    for name in names:
        if has_vocabulary(folder / name):
            continue  # diffusers reads it from the config folder
        src = None if tokenizer is None else next(
            (d for d in (Path(tokenizer) / name, Path(tokenizer) / "tokenizer", Path(tokenizer))
             if has_vocabulary(d)), None)
        if src is None:
            where = f"{tokenizer} has none" if tokenizer else "none given"
            raise ModelSourceError(
                f"{path}: a single-file checkpoint holds no tokenizer and {folder} has no "
                f"vocabulary ({where}); pass --tokenizer DIR, a folder with CLIP's vocab.json "
                "and merges.txt or tokenizer.json (e.g. the tokenizer/ folder of any SD 1.x / "
                "2.x / SDXL diffusers model; they share one vocabulary), or --model-config "
                "DIR, a full local diffusers folder of the same architecture")
        settings_file = folder / name / "tokenizer_config.json"
        settings = (json.loads(settings_file.read_text(encoding="utf-8"))
                    if settings_file.is_file() else {})
        kw = {k: settings[k] for k in ("pad_token", "model_max_length") if k in settings}
        out[name] = CLIPTokenizer.from_pretrained(str(src), local_files_only=True, **kw)
    return out
