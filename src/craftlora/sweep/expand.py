"""Variants from a sweep file: grid expansion, override validation, and which variants share a
trained LoRA (those that differ only in ``generate.*``)."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from craftlora.sweep.config import EvaluateSettings, SweepConfig, SweepConfigError, Value
from craftlora.train.config import TrainConfig

#: generation fields a variant may change without retraining
GENERATE_KEYS = ("sampler", "steps", "cfg", "weight")
#: train-config keys a sweep owns (every run's own folder and seed)
RESERVED = ("output_dir", "seed", "name")


@dataclass(frozen=True)
class Variant:
    name: str
    train: dict[str, Value] = field(default_factory=dict)
    generate: dict[str, Value] = field(default_factory=dict)

    @property
    def train_key(self) -> str:
        """Variants with the same training overrides share their trained LoRAs."""
        text = json.dumps(self.train, sort_keys=True)
        return "t-" + hashlib.sha256(text.encode()).hexdigest()[:10]

    def generation(self, ev: EvaluateSettings) -> dict[str, Any]:
        return {k: self.generate.get(k, getattr(ev, k)) for k in GENERATE_KEYS}


def check_key(key: str, where: str) -> None:
    """Raise SweepConfigError naming ``key`` when it is no field of the train config
    (or of ``generate``)."""
    head, _, rest = key.partition(".")
    if head == "generate":
        if rest not in GENERATE_KEYS:
            raise SweepConfigError(f"{where}: unknown key {key!r} (generate.* is one of "
                                   f"{', '.join(GENERATE_KEYS)})")
        return
    if key in RESERVED:
        raise SweepConfigError(f"{where}: {key!r} is set by the sweep for every run")
    model: type[BaseModel] | None = TrainConfig
    parts = key.split(".")
    for i, part in enumerate(parts):
        fields = model.model_fields if model is not None else {}
        if part not in fields:
            raise SweepConfigError(f"{where}: unknown key {key!r} ({'.'.join(parts[:i + 1])!r} "
                                   f"is not a train config field)")
        ann = fields[part].annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if model is not None and i == len(parts) - 1:
            raise SweepConfigError(f"{where}: {key!r} is a section; set one of its fields")


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def expand(cfg: SweepConfig, source: Path | str = "sweep file") -> list[Variant]:
    """The variants in order (the first is the baseline); every key checked, names unique."""
    if cfg.grid:
        for key in cfg.grid:
            check_key(key, f"{source}: [grid]")
            if not cfg.grid[key]:
                raise SweepConfigError(f"{source}: [grid] {key!r} has no values")
        keys = list(cfg.grid)
        specs = [(",".join(f"{_short(k)}={v}" for k, v in zip(keys, combo, strict=True)),
                  dict(zip(keys, combo, strict=True)))
                 for combo in itertools.product(*(cfg.grid[k] for k in keys))]
    else:
        specs = [(v.name, v.set) for v in cfg.variants]
    seen: set[str] = set()
    out = []
    for name, sets in specs:
        if name in seen:
            raise SweepConfigError(f"{source}: variant {name!r} appears twice")
        seen.add(name)
        for key in sets:
            check_key(key, f"{source}: variant {name!r}")
        out.append(Variant(
            name=name,
            train={k: v for k, v in sorted(sets.items()) if not k.startswith("generate.")},
            generate={k.split(".", 1)[1]: v for k, v in sets.items()
                      if k.startswith("generate.")}))
    return out
