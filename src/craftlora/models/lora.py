"""LoRA adapters on SD-family models and their two file forms.

- **peft / diffusers form** ``pytorch_lora_weights.safetensors``: keys ``unet.<module>.lora_A.weight``
  / ``lora_B``; the adapter config (rank, alpha, targets) rides in the safetensors metadata so
  ``pipe.load_lora_weights`` rebuilds the same scale.
- **kohya form** (sd-scripts, AUTOMATIC1111, ComfyUI): ``<prefix>_<module>.lora_down.weight``,
  ``.lora_up.weight`` and a true ``.alpha`` per module, named as sd-scripts names them (SDXL's
  UNet in LDM paths; see :mod:`craftlora.models.kohya_names`), with ``ss_*`` metadata
  (:mod:`craftlora.models.kohya_meta`). The effective scale is alpha/rank in both forms, so
  converting keeps the model's output unchanged whatever alpha is.

Reading files from other trainers: :mod:`craftlora.models.lora_import`.
"""  # noqa: E501

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from craftlora.data.atomic import atomic_write_bytes
from craftlora.models.kohya_meta import family_metadata, network_metadata
from craftlora.models.kohya_names import Layout, kohya_names, sd_scripts_modules

UNET_ATTENTION = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_ATTENTION = ["q_proj", "k_proj", "v_proj", "out_proj"]
DIFFUSERS_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
TARGET_PRESETS = ("sd-scripts", "sd-scripts+conv")


class LoraFormatError(ValueError):
    """A LoRA file or state dict does not have the expected structure."""


def select_modules(
    model: torch.nn.Module, targets: Iterable[str], blocks: Iterable[str] = ()
) -> list[str]:
    """Full names of Linear/Conv modules whose name ends with a target and matches a block regex.

    A target ``sd-scripts`` (``sd-scripts+conv``) stands for every module sd-scripts'
    ``networks.lora`` wraps (with its ``conv_dim`` layers). ``blocks`` are regular expressions
    searched in the module name (``up_blocks\\.0``); empty means every block.
    """
    targets = list(targets)
    presets = {t: sd_scripts_modules(model, conv=t.endswith("+conv"))
               for t in targets if t in TARGET_PRESETS}
    preset_names = {n for names in presets.values() for n in names}
    pats = [re.compile(b) for b in blocks]
    found = []
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear | torch.nn.Conv2d):
            continue
        if name not in preset_names and not any(name == t or name.endswith("." + t)
                                                for t in targets if t not in presets):
            continue
        if pats and not any(p.search(name) for p in pats):
            continue
        found.append(name)
    if not found:
        raise LoraFormatError(
            f"no module of {type(model).__name__} matches targets {targets}"
            + (f" within blocks {[p.pattern for p in pats]}" if pats else "")
        )
    return found


def add_lora(
    model: Any,
    *,
    rank: int,
    alpha: float,
    dropout: float = 0.0,
    targets: Iterable[str] = UNET_ATTENTION,
    blocks: Iterable[str] = (),
    init: str | bool = "gaussian",
    adapter_name: str = "default",
) -> list[str]:
    """Attach a peft LoRA adapter to ``model`` (base weights frozen); return the module names."""
    from peft import LoraConfig

    modules = select_modules(model, targets, blocks)
    cfg = LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, init_lora_weights=init,
        target_modules=modules,
    )
    model.requires_grad_(False)
    model.add_adapter(cfg, adapter_name=adapter_name)
    return modules


def lora_state_dict(model: Any, adapter_name: str = "default") -> dict[str, torch.Tensor]:
    """peft-form LoRA tensors of ``model`` (``<module>.lora_A.weight`` / ``lora_B``), on CPU."""
    from peft.utils import get_peft_model_state_dict

    sd = get_peft_model_state_dict(model, adapter_name=adapter_name)
    return {k: v.detach().cpu().contiguous() for k, v in sd.items()}


def adapter_config(model: Any, adapter_name: str = "default") -> dict[str, Any]:
    cfg = model.peft_config[adapter_name].to_dict()
    return json.loads(json.dumps(cfg, default=lambda o: sorted(o) if isinstance(o, set) else str(o)))  # noqa: E501


def _module_alpha(cfg: Mapping[str, Any], module: str) -> tuple[int, float]:
    rank, alpha = int(cfg["r"]), float(cfg["lora_alpha"])
    for pat, r in (cfg.get("rank_pattern") or {}).items():
        if module == pat or module.endswith("." + pat) or re.fullmatch(pat, module):
            rank = int(r)
    for pat, a in (cfg.get("alpha_pattern") or {}).items():
        if module == pat or module.endswith("." + pat) or re.fullmatch(pat, module):
            alpha = float(a)
    return rank, alpha


def _peft_modules(part: str, sd: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """``{module: {"A": lora_A, "B": lora_B}}`` of a peft state dict."""
    mods: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in sd.items():
        m = re.fullmatch(r"(.+)\.lora_([AB])(?:\.default)?\.weight", key)
        if not m:
            raise LoraFormatError(f"{part}: unexpected peft key {key!r}")
        mods.setdefault(m[1], {})[m[2]] = tensor
    return mods


def peft_to_kohya(
    parts: Mapping[str, tuple[Mapping[str, torch.Tensor], Mapping[str, Any]]],
    *,
    unet_config: Mapping[str, Any],
    layout: Layout = "sd-scripts",
) -> dict[str, torch.Tensor]:
    """Kohya tensors from ``{"unet": (peft_sd, adapter_cfg), "text_encoder": (...), ...}``.

    Names follow :func:`craftlora.models.kohya_names.kohya_names` (sd-scripts' own by default:
    LDM paths for an SDXL UNet). Each module's ``.alpha`` is the adapter's ``lora_alpha`` (or its
    ``alpha_pattern`` entry), never silently the rank.
    """
    out: dict[str, torch.Tensor] = {}
    for part, (sd, cfg) in parts.items():
        mods = _peft_modules(part, sd)
        try:
            names = kohya_names(part, mods, unet_config=unet_config, layout=layout)
        except (ValueError, NotImplementedError) as e:
            raise LoraFormatError(f"{part}: {e}") from e
        for module, ab in mods.items():
            if set(ab) != {"A", "B"}:
                raise LoraFormatError(f"{part}.{module}: needs both lora_A and lora_B")
            rank, alpha = _module_alpha(cfg, module)
            if ab["A"].shape[0] != rank:
                raise LoraFormatError(f"{part}.{module}: lora_A has rank {ab['A'].shape[0]}, "
                                      f"config says {rank}")
            name = names[module]
            out[f"{name}.lora_down.weight"] = ab["A"]
            out[f"{name}.lora_up.weight"] = ab["B"]
            out[f"{name}.alpha"] = torch.tensor(alpha, dtype=torch.float32)
    return out


def _metadata_str(meta: Mapping[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}


def save_safetensors_atomic(
    tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, Any] | None = None
) -> None:
    """``save_file`` through a temp file + ``os.replace`` (readers never see half a file)."""
    from safetensors.torch import save

    data = save({k: v.contiguous() for k, v in tensors.items()}, metadata=_metadata_str(metadata or {}))  # noqa: E501
    atomic_write_bytes(Path(path), data)


def save_diffusers_lora(
    out_dir: Path,
    parts: Mapping[str, tuple[Mapping[str, torch.Tensor], Mapping[str, Any]]],
    *,
    sdxl: bool = False,
) -> Path:
    """Write ``pytorch_lora_weights.safetensors`` loadable by ``pipe.load_lora_weights``."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for part, (sd, cfg) in parts.items():
        for k, v in sd.items():
            tensors[f"{part}.{k}"] = v
        meta[f"{part}_lora_adapter_metadata"] = _lora_meta(cfg)
    path = Path(out_dir) / DIFFUSERS_WEIGHT_NAME
    save_safetensors_atomic(tensors, path, _diffusers_meta(meta))
    return path


def _lora_meta(cfg: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("r", "lora_alpha", "target_modules", "rank_pattern", "alpha_pattern", "lora_dropout",
            "use_dora", "use_rslora", "init_lora_weights", "bias")
    out = {k: cfg[k] for k in keep if k in cfg}
    if isinstance(out.get("target_modules"), set):
        out["target_modules"] = sorted(out["target_modules"])
    return out


def _diffusers_meta(meta: Mapping[str, Any]) -> dict[str, str]:
    # diffusers keeps every part's LoraConfig as "<part>.<field>" keys of one JSON entry.
    from diffusers.loaders.lora_base import LORA_ADAPTER_METADATA_KEY

    combined = {}
    for k, v in meta.items():
        if k.endswith("_lora_adapter_metadata"):
            part = k.removesuffix("_lora_adapter_metadata")
            for mk, mv in v.items():
                combined[f"{part}.{mk}"] = mv
    return {"format": "pt", LORA_ADAPTER_METADATA_KEY: json.dumps(combined, sort_keys=True)}


def save_kohya_lora(
    path: Path,
    parts: Mapping[str, tuple[Mapping[str, torch.Tensor], Mapping[str, Any]]],
    *,
    unet_config: Mapping[str, Any],
    prediction_type: str = "epsilon",
    layout: Layout = "sd-scripts",
    dtype: torch.dtype | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the kohya form: sd-scripts' module names (``layout``), a true per-module ``.alpha``,
    the weights in ``dtype`` (default: as trained) and ``ss_*`` metadata (see
    :mod:`craftlora.models.kohya_meta`); ``metadata`` adds to or overrides it."""
    tensors = peft_to_kohya(parts, unet_config=unet_config, layout=layout)
    if dtype is not None:
        tensors = {k: v if k.endswith(".alpha") else v.to(dtype) for k, v in tensors.items()}
    meta = {
        **network_metadata(tensors),
        "ss_network_dropout": str(next(iter(parts.values()))[1].get("lora_dropout", 0.0)),
        **family_metadata(unet_config, prediction_type),
        **{k: str(v) for k, v in (metadata or {}).items()},
    }
    save_safetensors_atomic(tensors, Path(path), meta)
    return Path(path)


def read_lora_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a LoRA safetensors file; every tensor must be finite."""
    from safetensors import safe_open

    path = Path(path)
    try:
        sd = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:
        raise LoraFormatError(f"{path}: not a readable safetensors file: {e}") from e
    bad = [k for k, v in sd.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise LoraFormatError(f"{path}: non-finite values in {bad[:5]}")
    return sd, meta


def is_kohya(sd: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("lora_unet_", "lora_te")) for k in sd)


def peft_parts(sd: Mapping[str, torch.Tensor], meta: Mapping[str, str]
               ) -> dict[str, tuple[dict[str, torch.Tensor], dict[str, Any]]]:
    """``{part: (peft_sd, adapter_cfg)}`` of a diffusers/peft file (keys
    ``unet.<module>.lora_A.weight``). Without adapter metadata alpha = rank, as diffusers
    assumes."""
    from diffusers.loaders.lora_base import LORA_ADAPTER_METADATA_KEY

    cfgs_flat = json.loads(meta.get(LORA_ADAPTER_METADATA_KEY, "{}"))
    parts: dict[str, tuple[dict[str, torch.Tensor], dict[str, Any]]] = {}
    for k, v in sd.items():
        part, _, rest = k.partition(".")
        parts.setdefault(part, ({}, {}))[0][rest] = v
    for part, (psd, cfg) in parts.items():
        cfg.update({k.split(".", 1)[1]: v for k, v in cfgs_flat.items()
                    if k.startswith(part + ".")})
        if "r" not in cfg:
            ranks = {m: ab["A"].shape[0] for m, ab in _peft_modules(part, psd).items() if "A" in ab}
            r = max(set(ranks.values()), key=list(ranks.values()).count)
            cfg.update(r=r, lora_alpha=r, target_modules=sorted(ranks),
                       rank_pattern={m: k for m, k in ranks.items() if k != r},
                       alpha_pattern={m: k for m, k in ranks.items() if k != r})
    return parts


def diffusers_file_to_kohya(path: Path, out: Path, *, unet_config: Mapping[str, Any],
                            prediction_type: str = "epsilon", layout: Layout = "sd-scripts",
                            metadata: Mapping[str, Any] | None = None) -> Path:
    """Convert a diffusers/peft file written by :func:`save_diffusers_lora` to the kohya form."""
    sd, meta = read_lora_file(path)
    return save_kohya_lora(out, peft_parts(sd, meta), unet_config=unet_config,
                           prediction_type=prediction_type, layout=layout, metadata=metadata)


__all__ = [
    "UNET_ATTENTION", "TEXT_ATTENTION", "TARGET_PRESETS", "DIFFUSERS_WEIGHT_NAME",
    "LoraFormatError", "add_lora",
    "adapter_config", "diffusers_file_to_kohya", "is_kohya", "lora_state_dict", "peft_parts",
    "peft_to_kohya", "read_lora_file", "save_diffusers_lora", "save_kohya_lora", "select_modules",
]
