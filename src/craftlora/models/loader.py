"""One loader for every model source; nothing downstream knows which one it came from.

Sources (a string):

- ``mini`` (alias ``mini-base``): the bundled tiny base in ``craftlora/mini/base`` (a diffusers
  folder, see its README for the model card);
- a local diffusers folder (has ``model_index.json``);
- a single-file SD 1.5 / 2.1 / SDXL checkpoint (``.safetensors``; ``.ckpt`` is refused because
  it is a pickle) in the original LDM key layout A1111 / ComfyUI use; offline this needs
  ``config=`` naming a local diffusers folder of the same family (component configs, tokenizer
  and scheduler; its weights are not read). ``craftlora.models.ldm_layout`` writes such files;
- a hub id (``org/name``) only when the machine can reach the hub.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

MINI_BASE = Path(__file__).resolve().parent.parent / "mini" / "base"
MINI_NAMES = ("mini", "mini-base")
SINGLE_FILE_SUFFIXES = (".safetensors",)
SDXL_KEY = "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"


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


def _pipeline_class(folder: Path):
    import json

    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    return StableDiffusionXLPipeline if "text_encoder_2" in index else StableDiffusionPipeline


def _check_safetensors_header(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {"keys": set(f.keys())}
    except Exception as e:  # safetensors raises several types for a bad header
        raise ModelSourceError(f"{path}: not a readable safetensors file: {e}") from e


def load_components(
    source: str | os.PathLike[str],
    *,
    config: str | os.PathLike[str] | None = None,
    dtype: torch.dtype = torch.float32,
    allow_network: bool | None = None,
) -> Components:
    """Load an SD-family model from any supported source (see module doc)."""
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
        return load_components(MINI_BASE, dtype=dtype, allow_network=False)
    path = Path(src).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelSourceError(f"{path}: a folder but not a diffusers model (no model_index.json)")  # noqa: E501
        cls = _pipeline_class(path)
        kw: dict[str, Any] = {"local_files_only": True, "dtype": dtype}
        if cls.__name__ == "StableDiffusionPipeline":
            kw.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe = cls.from_pretrained(str(path), **kw)
        return _from_pipeline(pipe, str(path))
    if path.suffix in (".ckpt", ".pt", ".pth", ".bin"):
        raise ModelSourceError(
            f"{path}: pickle-based checkpoints are refused (they can run code); "
            "convert it to .safetensors first"
        )
    if path.suffix in SINGLE_FILE_SUFFIXES:
        if not path.is_file():
            raise ModelSourceError(f"{path}: checkpoint file not found")
        return _load_single_file(path, config=config, dtype=dtype, allow_network=allow_network)
    if src.count("/") == 1 and not path.exists():
        if not allow_network:
            raise ModelSourceError(
                f"{src}: looks like a hub id, but this machine is offline (HF_HUB_OFFLINE=1 or "
                "allow_network=False); point the config at a local folder or .safetensors file"
            )
        from diffusers import DiffusionPipeline

        pipe = DiffusionPipeline.from_pretrained(src, dtype=dtype)
        return _from_pipeline(pipe, src)
    raise ModelSourceError(
        f"{src}: not a model source (expected 'mini' / 'mini-base', a diffusers folder, a "
        ".safetensors checkpoint or a hub id)"
    )


def _load_single_file(path: Path, *, config, dtype, allow_network: bool) -> Components:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    keys = _check_safetensors_header(path)["keys"]
    cls = StableDiffusionXLPipeline if SDXL_KEY in keys else StableDiffusionPipeline
    kw: dict[str, Any] = {"dtype": dtype}
    if config is not None:
        cfg = Path(config)
        if not (cfg / "model_index.json").is_file():
            raise ModelSourceError(f"{cfg}: config must be a local diffusers folder")
        kw.update(config=str(cfg), local_files_only=True)
    elif not allow_network:
        raise ModelSourceError(
            f"{path}: loading a single-file checkpoint offline needs `config` = a local "
            "diffusers folder of the same family (its configs and tokenizer are used)"
        )
    if cls is StableDiffusionPipeline:
        kw.update(safety_checker=None, requires_safety_checker=False)
    pipe = cls.from_single_file(str(path), **kw)
    return _from_pipeline(pipe, str(path))
