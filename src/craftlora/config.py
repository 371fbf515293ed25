"""Pydantic models for a workspace's ``craftlora.toml``.

Unknown keys are errors; every error names the file, the key and the fault.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Literal, TypeVar

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CONFIG_NAME = "craftlora.toml"
CATALOG_NAME = "catalog.sqlite"

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.(phrase))?\}")


M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file is missing, malformed or invalid; the message names file and key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Attribute(Strict):
    """One labelled attribute: its allowed values and an optional phrase per value."""

    values: list[str] = Field(min_length=1)
    phrases: dict[str, str] = Field(default_factory=dict)

    @field_validator("values")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dup = sorted({x for x in v if v.count(x) > 1})
        if dup:
            raise ValueError(f"duplicate values {dup}")
        if any(not x.strip() for x in v):
            raise ValueError("empty value")
        return v

    @model_validator(mode="after")
    def _phrases_known(self) -> Attribute:
        unknown = sorted(set(self.phrases) - set(self.values))
        if unknown:
            raise ValueError(f"phrases for values not in 'values': {unknown}")
        return self


class IngestConfig(Strict):
    max_pixels: int = Field(default=40_000_000, gt=0, description="decompression-bomb limit")
    workers: int = Field(default=0, ge=0, description="0 = one per core")


class SplitConfig(Strict):
    seed: int = 0


class QCConfig(Strict):
    """Thresholds of the automatic QC checks (``craftlora qc``); luminance is on 0..255."""

    expected_size: tuple[int, int] | None = Field(default=None, description="(width, height)")
    analysis_size: int = Field(default=256, gt=8, description="longer side for statistics")
    flat_std: float = Field(default=2.0, ge=0, description="luminance std below = flat/blank")
    black_level: float = Field(default=8.0, ge=0, description="mean below = all black")
    white_level: float = Field(default=250.0, le=255, description="mean above = all white")
    range_quantiles: tuple[float, float] = (0.01, 0.99)
    range_margin: float = Field(default=0.5, ge=0, description="× real range width, each side")
    sharpness_quantile: float = Field(default=0.05, ge=0, le=1)
    sharpness_factor: float = Field(default=0.5, gt=0, description="× real low quantile")
    sharpness_reference: Literal["real", "decoder"] = Field(
        default="real", description="'decoder': the factor × what the model's VAE keeps")
    hash_size: int = Field(default=8, ge=4, le=8, description="perceptual hash side (≤ 8)")
    duplicate_hamming: int = Field(default=6, ge=0, description="hash shortlist, bits")
    duplicate_rms: float = Field(default=6.0, ge=0, description="32² grey thumbnail RMS")
    memorisation_hamming: int = Field(default=6, ge=0, description="hash shortlist, bits")
    memorisation_rms: float = Field(default=6.0, ge=0, description="32² grey thumbnail RMS")
    memorisation_feature_ratio: float = Field(
        default=0.1, ge=0, description="× median real-train nearest-neighbour distance")
    min_agreement: float = Field(default=0.75, ge=0, le=1)
    outlier_k: int = Field(default=5, ge=1)
    outlier_quantile: float = Field(default=0.99, gt=0, le=1)
    outlier_factor: float = Field(default=1.5, gt=0)
    outlier_features: Literal["auto", "domain", "pixels"] = Field(
        default="auto", description="auto = domain with a judge, else pixels")
    reference_split: str = Field(default="train", description="real split used as reference")
    optional_checks: list[Literal["text_overlay", "distortion"]] = Field(
        default_factory=list, description="extra checks to run (character candidates)")
    overlay_factor: float = Field(default=2.0, gt=0, description="× reference 99th pct")
    overlay_floor: float = Field(default=0.01, ge=0, description="least text-overlay limit")
    distortion_factor: float = Field(default=1.1, gt=0, description="× reference 99th pct")


class ReviewConfig(Strict):
    """Human review (``craftlora studio``, ``craftlora review``): the reasons of a rejection."""

    reasons: list[str] = Field(
        default_factory=lambda: ["wrong attribute", "artefact", "modern element",
                                 "copies a real image", "other"],
        min_length=1, max_length=9, description="keys 1..9 in the review room")


class WorkspaceConfig(Strict):
    """The whole ``craftlora.toml``."""

    name: str = "workspace"
    caption_template: str = ""
    attributes: dict[str, Attribute] = Field(default_factory=dict)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    qc: QCConfig = Field(default_factory=QCConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)

    @field_validator("attributes")
    @classmethod
    def _names(cls, v: dict[str, Attribute]) -> dict[str, Attribute]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"attribute name {name!r} must be an identifier")
        return v

    @model_validator(mode="after")
    def _template_fields(self) -> WorkspaceConfig:
        for m in _FIELD.finditer(self.caption_template):
            if m.group(1) not in self.attributes:
                raise ValueError(
                    f"caption_template names unknown attribute {m.group(1)!r}"
                )
        return self

    def template(self) -> str:
        """The caption template, or a plain default over every attribute."""
        if self.caption_template:
            return self.caption_template
        return ", ".join(f"{{{a}}}" for a in self.attributes)

    def phrase(self, attribute: str, value: str) -> str:
        a = self.attributes[attribute]
        return a.phrases.get(value, value)


def read_toml(path: str | os.PathLike[str], what: str,
              error: type[Exception] = ConfigError) -> dict:
    """Parse a TOML file; ``error`` names the file and the fault (missing, not TOML)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise error(f"{path}: not valid TOML: {e}") from e


def validate(model: type[M], raw: object, path: str | os.PathLike[str], what: str,
             error: type[Exception] = ConfigError) -> M:
    """``model.model_validate(raw)``; ``error`` lists every faulty key with its reason."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        lines = [f"{path}: invalid {what}"]
        for err in e.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {key}: {err['msg'].removeprefix('Value error, ')}")
        raise error("\n".join(lines)) from e


def load_config(path: str | os.PathLike[str]) -> WorkspaceConfig:
    """Read and validate a workspace config; raise ConfigError naming file and key."""
    return validate(WorkspaceConfig, read_toml(path, "config file"), path, "config")


def config_toml(cfg: WorkspaceConfig) -> bytes:
    """The config as TOML (what ``Workspace.save_config`` writes atomically)."""
    data = cfg.model_dump(mode="json", exclude_none=True)  # TOML has no null
    return tomli_w.dumps(data).encode("utf-8")
