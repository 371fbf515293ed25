"""Presets of ``craftlora demo``: the full run, ``--quick`` and a tiny one for tests.

Every size that drives the wall time is here, in one pydantic model, so a preset is one
readable object and the resolved settings are written next to the demo's outputs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from craftlora.classify.augment import AugmentConfig
from craftlora.classify.config import TrainConfig
from craftlora.classify.weights import MINI_TASK_WEIGHTS

# The mini base's text encoder reads 24 tokens (SD reads 77). The mini-kiln workspace's long
# caption (dynasty, kiln, type + phrase, glaze + phrase) is ~75 tokens and would be cut before
# the glaze; this short form fits every valid combination in at most 23 tokens.
DEMO_CAPTION_TEMPLATE = "{dynasty} {kiln} {glaze} {type}"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj",
                "ff.net.2", "conv1", "conv2", "time_emb_proj"]


class LoraPreset(Strict):
    rank: int = 32
    alpha: float = 32.0
    targets: list[str] = Field(default_factory=lambda: list(UNET_TARGETS),
                               description="attention, transformer and ResNet layers")
    text_encoder: bool = True
    steps: int = Field(default=3500, description="set by the 30-minute budget (docs/demo.md)")
    batch_size: int = 32
    lr: float = 2e-3
    weight: float = Field(default=1.0, description="LoRA weight in every prompt tag")


class GenerationPreset(Strict):
    sampler: str = Field(default="DDIM", description="others read within its spread")
    steps: int = 20
    cfg: float = Field(default=1.75, description="beat 1.5, 2 and 2.5 (docs/demo.md)")
    clip_skip: int = Field(default=1, description="A1111 convention: the last layer")
    batch_size: int = 16


class JudgePreset(Strict):
    use_shipped: bool = Field(default=True, description="the shipped judge when it fits")
    n_per_combo: int = 24
    n_val_per_combo: int = 3
    n_test_per_combo: int = 6
    epochs: int = 18
    recalibrate_per_combo: int = Field(default=8, ge=1, description="BatchNorm renders")
    heldout_per_combo: int = Field(default=4, ge=1, description="held-out renders")


def demo_classifier() -> TrainConfig:
    """The experiment's classifier: a small backbone from scratch at 64 px for 7 epochs (4
    stayed at chance level; 8 ran the demo past 30 minutes on a 2-core Xeon), no sampler (with
    class weights both over-correct), type weighted 2.0 (the silhouette is learned last), square
    crops and milder hue (vessel proportions, glazes)."""
    return TrainConfig(backbone="mobilenet_v3_small", image_size=64, epochs=7, patience=7,
                       backbone_lr=3e-3, head_lr=3e-3, batch_size=64,
                       task_weights=dict(MINI_TASK_WEIGHTS),
                       augment=AugmentConfig(crop_ratio=(1.0, 1.0), hue=0.05, rotation=5.0,
                                             translate=0.05))


class DemoSettings(Strict):
    preset: Literal["full", "quick", "tiny"] = "full"
    n_real: int = 6000
    world_seed: int = 0
    size: int = 64
    model: str = Field(default="mini", description="base model source (loader string)")
    lora: LoraPreset = Field(default_factory=LoraPreset)
    generation: GenerationPreset = Field(default_factory=GenerationPreset)
    judge: JudgePreset = Field(default_factory=JudgePreset)
    table6_images: int = Field(default=320, description="prompts (one image each) per model")
    shares: tuple[float, float] = (0.05, 0.10)
    generate_margin: float = Field(default=0.2, description="extra share generated for QC losses")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    classifier: TrainConfig = Field(default_factory=demo_classifier)
    bootstrap: int = 300
    controlnet_images: int = 32
    qc_min_agreement: float = Field(default=0.75, ge=0, le=1,
                                    description="QC: judge agreement an image needs")
    workers: int = Field(default=2, ge=1, description="processes for parallel steps")

    @property
    def is_full(self) -> bool:
        return self.preset == "full"

    @property
    def note(self) -> str | None:
        """One sentence that says what a shorter run is (None for the full demo)."""
        if self.is_full:
            return None
        seeds = f"{len(self.seeds)} seed" + ("s" if len(self.seeds) > 1 else "")
        return (f"This {self.preset} run is a smoke test of every step on a small world "
                f"({self.n_real:,} images, a {self.lora.steps}-step LoRA, {seeds}): it shows "
                "the loop working, not the full experiment's figures — run `craftlora demo` "
                "for those.")


def preset(name: str) -> DemoSettings:
    """``full`` (the real demo), ``quick`` (a first look) or ``tiny`` (tests)."""
    if name == "full":
        return DemoSettings()
    if name == "quick":  # measured: 238 s on an idle 2-core Xeon (docs/results.md)
        return DemoSettings(
            preset="quick", n_real=2000, table6_images=48, seeds=[0],
            lora=LoraPreset(steps=350),
            judge=JudgePreset(n_per_combo=6, n_val_per_combo=1, n_test_per_combo=1, epochs=5,
                              recalibrate_per_combo=4, heldout_per_combo=2),
            classifier=demo_classifier().model_copy(update={"epochs": 4, "patience": 4}),
            bootstrap=100, controlnet_images=8, generate_margin=0.1,
        )
    if name == "tiny":
        return DemoSettings(
            preset="tiny", n_real=300, table6_images=8, seeds=[0], size=32,
            lora=LoraPreset(rank=2, alpha=2.0, steps=2, batch_size=4),
            judge=JudgePreset(n_per_combo=1, n_val_per_combo=1, n_test_per_combo=1, epochs=1,
                              recalibrate_per_combo=1, heldout_per_combo=1),
            generation=GenerationPreset(steps=2, batch_size=8),
            classifier=demo_classifier().model_copy(
                update={"epochs": 1, "patience": 1, "batch_size": 32, "image_size": 32}),
            bootstrap=100, controlnet_images=2, workers=1, qc_min_agreement=0.0,
        )
    raise ValueError(f"unknown demo preset {name!r} (full, quick, tiny)")
