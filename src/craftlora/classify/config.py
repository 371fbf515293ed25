"""Training configuration of a multi-task classifier (defaults = the porcelain study's code)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from craftlora.classify.augment import AugmentConfig
from craftlora.classify.weights import DEFAULT_TASK_WEIGHTS


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backbone: str = "mobilenet_v3_large"
    pretrained: str = Field(default="auto", pattern="^(auto|imagenet|none)$")
    image_size: int = Field(default=224, ge=16)
    tasks: list[str] | None = Field(default=None, description="None = every attribute")
    task_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_TASK_WEIGHTS))
    beta: float = Field(default=0.999, ge=0, lt=1)
    weight_cap: float = Field(default=10.0, gt=0)
    sampler_task: str | None = Field(
        default=None, description="opt-in WeightedRandomSampler on this task (the study used "
        "'glaze'); None or 'none' = plain shuffling. Class weights already correct imbalance, "
        "so both together over-correct and starve the common classes")
    combo_oversampling: bool = False
    threshold_augment: int = Field(default=0, ge=0, description="repeat combos below N; 0 = off")
    backbone_lr: float = Field(default=1e-4, gt=0)
    head_lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-5, ge=0)
    eta_min: float = Field(default=1e-6, ge=0)
    grad_clip: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=64, ge=1)
    epochs: int = Field(default=50, ge=1)
    patience: int = Field(default=10, ge=1)
    eval_batch_size: int = Field(default=256, ge=1)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    @field_validator("sampler_task", mode="before")
    @classmethod
    def _none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and v.strip().lower() in ("", "none") else v
