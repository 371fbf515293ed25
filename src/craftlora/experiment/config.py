"""The experiment config: configurations (real-only and mixes) × seeds on one val/test split."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from craftlora.classify.config import TrainConfig
from craftlora.config import read_toml, validate


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MixConfig(Strict):
    """One configuration: real only, or real + a synthetic set at a ratio or a count."""

    name: str
    synthetic: str | None = Field(default=None, description="catalog set name")
    ratio: float | None = Field(default=None, ge=0, lt=1, description="synthetic share")
    count: int | None = Field(default=None, ge=0)
    require_qc: bool = True
    when_short: Literal["error", "all_passed"] = Field(
        default="error", description="when fewer images passed QC than the mix asks: "
        "'error' stops the run, 'all_passed' uses every image that passed (and notes it)")
    require_review: bool = Field(default=False, description="mix only reviewer-accepted images")

    @model_validator(mode="after")
    def _check(self) -> MixConfig:
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", self.name):
            raise ValueError(f"config name {self.name!r}: use letters, digits, _ . + -")
        if self.synthetic is None and (self.ratio is not None or self.count is not None):
            raise ValueError(f"{self.name}: ratio/count given without a synthetic set")
        if self.synthetic is not None and (self.ratio is None) == (self.count is None):
            raise ValueError(f"{self.name}: give exactly one of ratio or count")
        return self


class RenderSet(Strict):
    """A mini-world set to render before the runs if it is missing (oracle or wrong labels)."""

    name: str
    n: int = Field(gt=0)
    seed: int = 0
    wrong_labels: bool = False


class PrepareConfig(Strict):
    """Build what the experiment needs on the mini world, when missing."""

    mini_kiln: bool = Field(default=False, description="create the workspace from mini-kiln")
    n: int = Field(default=6000, gt=0)
    seed: int = 0
    size: int = 64
    render_sets: list[RenderSet] = Field(default_factory=list)


class ExperimentConfig(Strict):
    workspace: str = Field(description="workspace folder, relative to the config file")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    baseline: str | None = Field(default=None, description="default: the config without "
                                 "a synthetic set")
    train: TrainConfig = Field(default_factory=TrainConfig)
    configs: list[MixConfig] = Field(min_length=1)
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    confusion_pairs: list[tuple[str, str, str]] = Field(default_factory=lambda: [
        ("glaze", "white", "ivory white"), ("glaze", "moon white", "celadon"),
        ("type", "tea bowl", "dish"), ("type", "pot", "vase"),
    ])
    minority_fraction: float = Field(default=1 / 3, gt=0, le=1,
                                     description="rarest share of each task's classes")
    workers: int = Field(default=1, ge=1, le=64, description="runs trained in parallel, "
                         "each in its own process on one torch thread")
    bootstrap: int = Field(default=1000, ge=100)
    rare_edges: tuple[int, int] = (10, 50)

    @model_validator(mode="after")
    def _names(self) -> ExperimentConfig:
        names = [c.name for c in self.configs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate config names {dup}")
        filters: dict[str, set[tuple[bool, bool]]] = {}
        for c in self.configs:  # the runner builds one pool per synthetic set
            if c.synthetic:
                filters.setdefault(c.synthetic, set()).add((c.require_qc, c.require_review))
        mixed = sorted(s for s, f in filters.items() if len(f) > 1)
        if mixed:
            raise ValueError(f"configs on set(s) {mixed} differ in require_qc/require_review; "
                             "use one setting per set (or a copy of the set)")
        base = self.baseline_name()
        if base not in names:
            raise ValueError(f"baseline {base!r} is not one of the configs {names}")
        return self

    def baseline_name(self) -> str:
        if self.baseline:
            return self.baseline
        real = [c.name for c in self.configs if c.synthetic is None]
        return real[0] if real else self.configs[0].name


class ExperimentConfigError(ValueError):
    """The config file is missing or invalid; the message names the file and key."""


def load_experiment(path: str | Path) -> ExperimentConfig:
    raw = read_toml(path, "experiment config", ExperimentConfigError)
    return validate(ExperimentConfig, raw, path, "experiment config", ExperimentConfigError)
