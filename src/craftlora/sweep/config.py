"""The sweep file (``sweep.toml``): pydantic, unknown keys are errors.

    base = "train.toml"               # a `craftlora train` config, relative to this file
    seeds = [0, 1, 2]
    [grid]                            # every combination of these values ...
    "loss.perceptual_weight" = [0.0, 0.3]
    [[variants]]                      # ... or an explicit list (not both)
    name = "perc"
    set = { "loss.perceptual_weight" = 0.3 }
    [evaluate]                        # how `craftlora compare` makes and reads the images
    prompts = 32

Override keys are dotted paths into the train config, or ``generate.<field>`` (sampler, steps,
cfg, weight) for variants that reuse the trained LoRA.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from craftlora.config import read_toml, validate

Value = bool | int | float | str | None


class SweepConfigError(ValueError):
    """The sweep file is missing or invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VariantSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+=,-]*$")
    set: dict[str, Value] = Field(default_factory=dict)


class EvaluateSettings(_Strict):
    """``craftlora compare`` settings shared by every variant (a variant may override the
    generation ones through ``generate.*``)."""

    workspace: Path | None = Field(default=None, description="default: the base's workspace")
    judge: Path | None = Field(default=None, description="classifier checkpoint: FD in its "
                               "feature space and attribute agreement")
    features: str = Field(default="inception", description="FD feature space without a judge")
    lpips: str = "lpips-alex"
    lpips_weights: str | None = Field(default=None, description="'random': an untrained "
                                      "backbone (named so in every figure)")
    prompts: int = Field(default=32, gt=0)
    prompt_seed: int = 0
    sampler: str = "DDIM"
    steps: int = Field(default=20, gt=0)
    cfg: float = 1.75
    weight: float = 1.0
    batch_size: int = Field(default=16, gt=0)
    size: int | None = Field(default=None, description="default: the base's resolution")
    show: int = Field(default=8, ge=0, description="samples per variant on the page")


class SweepConfig(_Strict):
    name: str = "sweep"
    base: Path
    seeds: list[int] = Field(default=[0], min_length=1)
    grid: dict[str, list[Value]] = Field(default_factory=dict)
    variants: list[VariantSpec] = Field(default_factory=list)
    workers: int = Field(default=1, ge=1, description="training processes")
    bootstrap: int = Field(default=2000, ge=100)
    evaluate: EvaluateSettings = Field(default_factory=EvaluateSettings)

    @model_validator(mode="after")
    def _one_kind(self) -> SweepConfig:
        if bool(self.grid) == bool(self.variants):
            raise ValueError("give either [grid] or [[variants]] (exactly one)")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeat: {self.seeds}")
        return self

    def resolved(self, folder: Path) -> SweepConfig:
        out = self.model_copy(deep=True)
        out.base = (folder / self.base).resolve()
        ev = out.evaluate
        for key in ("workspace", "judge"):
            p = getattr(ev, key)
            if p is not None:
                setattr(ev, key, (folder / p).resolve())
        return out


def load_sweep(path: Path) -> SweepConfig:
    """Read and validate a sweep file; relative paths resolve against its folder."""
    path = Path(path)
    raw: dict[str, Any] = read_toml(path, "sweep file", SweepConfigError)
    cfg = validate(SweepConfig, raw, path, "sweep file", SweepConfigError)
    return cfg.resolved(path.parent.resolve())
