"""The training run config (``train.toml``): pydantic, unknown keys are errors.

Relative paths in the file are resolved against the file's own folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from craftlora.config import read_toml, validate
from craftlora.models.loader import MINI_NAMES, looks_like_path
from craftlora.models.lora import TEXT_ATTENTION, UNET_ATTENTION


class TrainConfigError(ValueError):
    """The train config is missing or invalid; the message names the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraSettings(_Strict):
    rank: int = Field(default=4, ge=1)
    alpha: float = Field(default=4.0, gt=0, description="scale = alpha / rank")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(UNET_ATTENTION))
    blocks: list[str] = Field(default_factory=list,
                              description="regexes on UNet module names; empty = all blocks")
    init: Literal["gaussian", "default"] = "gaussian"
    text_encoder: bool = False
    text_encoder_rank: int | None = None
    text_encoder_alpha: float | None = None
    text_encoder_targets: list[str] = Field(default_factory=lambda: list(TEXT_ATTENTION))
    text_encoder_lr: float | None = None


class DataSettings(_Strict):
    workspace: Path
    split: Literal["train", "val", "test", "none"] | None = "train"
    origin: Literal["real", "synthetic"] | None = "real"
    set_name: str | None = None
    resolution: int = Field(default=512, ge=8)
    center_crop: bool = True
    random_flip: bool = False
    caption_dropout: float = Field(default=0.0, ge=0.0, le=1.0)
    keep_tokens: int = Field(default=0, ge=0, description="leading tags never shuffled/dropped")
    shuffle_caption: bool = False
    caption_tag_dropout_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    num_repeats: int = Field(default=1, ge=1, description="kohya repeats: each image per epoch")
    specular_alpha: float | None = Field(default=None, ge=0.0, le=1.0,
                                         description="I·(1 − α·M_spec) before training")
    max_pixels: int = Field(default=40_000_000, gt=0)
    cache_dir: Path | None = Field(default=None,
                                   description="default: <workspace>/.cache/train")
    clip_skip: int = Field(default=0, ge=0, description="diffusers convention (A1111 − 1)")
    weighted_captions: bool = Field(default=False, description="read captions with A1111 "
                                    "syntax (emphasis, BREAK, 75-token chunks); else literally")
    buckets: bool = Field(default=False, description="aspect-ratio buckets (train/buckets.py)")
    min_bucket_reso: int = Field(default=256, ge=8)
    max_bucket_reso: int = Field(default=1024, ge=8)
    bucket_reso_steps: int = Field(default=64, ge=8, multiple_of=8,
                                   description="SD and SDXL UNets need 64")
    bucket_no_upscale: bool = Field(default=False, description="never enlarge an image")

    @model_validator(mode="after")
    def _bucket_range(self) -> DataSettings:
        if self.buckets and not (self.min_bucket_reso <= self.resolution <= self.max_bucket_reso):
            raise ValueError(f"buckets need min_bucket_reso ({self.min_bucket_reso}) <= "
                             f"resolution ({self.resolution}) <= max_bucket_reso "
                             f"({self.max_bucket_reso})")
        return self


class LossSettings(_Strict):
    prediction_type: Literal["auto", "epsilon", "v_prediction"] = "auto"
    min_snr_gamma: float | None = Field(default=None, gt=0)
    noise_offset: float = Field(default=0.0, ge=0.0)
    multires_noise_iterations: int = Field(default=0, ge=0,
                                           description="pyramid noise levels (kohya); 0 = off")
    multires_noise_discount: float = Field(default=0.3, gt=0.0, le=1.0)
    perceptual_weight: float = Field(default=0.0, ge=0.0, description="λ in L_diff + λ·L_perc")
    perceptual_network: Literal["auto", "vgg19", "classifier"] = "auto"
    perceptual_weights: Path | None = Field(default=None,
                                            description="VGG-19 .pth or classifier checkpoint")


class OptimSettings(_Strict):
    optimizer: Literal["adamw", "adamw8bit"] = Field(
        default="adamw", description="adamw8bit: bitsandbytes' 8-bit AdamW (CUDA only)")
    lr: float = Field(default=1e-4, gt=0)
    weight_decay: float = Field(default=1e-2, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine",
                       "cosine_with_restarts", "polynomial"] = "constant"
    warmup_steps: int = Field(default=0, ge=0)
    max_grad_norm: float | None = Field(default=1.0, gt=0)


class ValidationSettings(_Strict):
    prompts: list[str] = Field(default_factory=list)
    every: int = Field(default=0, ge=0, description="steps; 0 = only at the end")
    steps: int = Field(default=20, ge=1)
    guidance: float = 7.0
    seed: int = 0


class StyleModeSettings(_Strict):
    """``mode = "style-contrastive"``: one (embroidery, design) pair, see docs/style.md."""

    embroidery: Path
    design: Path
    caption: str = Field(description="content prompt of the design, e.g. 'a red star'")
    blocks: list[str] = Field(min_length=1, description="style blocks (`craftlora style blocks`)")
    expansion_designs: list[Path] = Field(default_factory=list)
    expansion_captions: list[str] = Field(default_factory=list)
    stage1_steps: int = Field(default=400, ge=1)
    stage2_steps: int = Field(default=200, ge=0)
    contrastive_weight: float = Field(default=1e-4, ge=0)
    tau: float = Field(default=1.0, gt=0)
    reference_weight: float = Field(default=1.0, ge=0)
    expansion_weight: float = Field(default=0.1, ge=0)

    @model_validator(mode="after")
    def _paired(self) -> StyleModeSettings:
        if len(self.expansion_designs) != len(self.expansion_captions):
            raise ValueError("style.expansion_designs and style.expansion_captions differ in "
                             "length")
        return self


class TrainConfig(_Strict):
    """A whole run; its resolved form is written to ``run.json`` and LoRA metadata."""

    name: str = "lora"
    mode: Literal["lora", "full", "style-contrastive"] = "lora"
    model: str = Field(description="'mini', a diffusers folder, a .safetensors file or hub id")
    model_config_dir: Path | None = Field(default=None,
                                          description="local diffusers folder for single files")
    model_tokenizer_dir: Path | None = Field(
        default=None, description="single files: CLIP vocab folder when model_config_dir has none")
    output_dir: Path
    seed: int = 0
    max_steps: int = Field(default=1000, ge=1)
    epochs: int | None = Field(default=None, ge=1, description="set: max_steps as kohya counts "
                                                               "epochs × repeats")
    batch_size: int = Field(default=1, ge=1, description="per process, per micro-step")
    grad_accum: int = Field(default=1, ge=1)
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    gradient_checkpointing: bool = False
    attention: Literal["sdpa", "eager"] = Field(
        default="sdpa", description="UNet attention: torch's scaled_dot_product_attention "
                                    "(diffusers' default), or the explicit softmax(QKᵀ)V")
    train_text_encoder: bool = Field(default=False, description="full mode: also the encoder")
    checkpoint_every: int = Field(default=500, ge=1)
    keep_last: int = Field(default=3, ge=1)
    tensorboard: bool = False
    log_every: int = Field(default=1, ge=1)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    data: DataSettings
    loss: LossSettings = Field(default_factory=LossSettings)
    optim: OptimSettings = Field(default_factory=OptimSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    style: StyleModeSettings | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        """The outputs are ``output_dir/<name>.safetensors`` and ``logs/<name>``: a bare name."""
        if "/" in v or "\\" in v or "\0" in v or v.strip() in ("", ".", ".."):
            raise ValueError(f"{v!r} is not a bare file name (the outputs must stay in "
                             "output_dir); use a name without '/' or '..'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.mode == "full" and self.lora.text_encoder:
            raise ValueError("lora.text_encoder is for mode = 'lora'; use train_text_encoder")
        if (self.mode == "style-contrastive") != (self.style is not None):
            raise ValueError("mode = 'style-contrastive' needs a [style] section (and only it)")
        return self

    def resolved(self, base: Path) -> TrainConfig:
        """A copy with relative paths made absolute against ``base``."""
        def fix(p: Path | None) -> Path | None:
            return None if p is None or p.is_absolute() else (base / p).resolve()

        out = self.model_copy(deep=True)
        out.output_dir = fix(self.output_dir) or self.output_dir
        out.data.workspace = fix(self.data.workspace) or self.data.workspace
        if self.data.cache_dir is not None:
            out.data.cache_dir = fix(self.data.cache_dir) or self.data.cache_dir
        if self.model_config_dir is not None:
            out.model_config_dir = fix(self.model_config_dir) or self.model_config_dir
        if self.model_tokenizer_dir is not None:
            out.model_tokenizer_dir = fix(self.model_tokenizer_dir) or self.model_tokenizer_dir
        if self.loss.perceptual_weights is not None:
            out.loss.perceptual_weights = fix(self.loss.perceptual_weights) or \
                self.loss.perceptual_weights
        if self.style is not None:
            st = out.style
            st.embroidery, st.design = fix(st.embroidery) or st.embroidery, fix(st.design) or \
                st.design
            st.expansion_designs = [fix(p) or p for p in st.expansion_designs]
        if self.model not in MINI_NAMES and not os.path.isabs(self.model):
            local = base / os.path.expanduser(self.model)
            # a path (exists here, or is spelled as one) resolves against the config's folder
            if local.exists() or looks_like_path(self.model):
                out.model = str(local.resolve())
        return out


def load_train_config(path: str | os.PathLike[str], **overrides: object) -> TrainConfig:
    """Read a train TOML, apply dotted ``overrides`` (``optim.lr=...``), resolve paths."""
    path = Path(path)
    raw = read_toml(path, "train config", TrainConfigError)
    for key, value in overrides.items():
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    try:
        cfg = TrainConfig.model_validate(raw)
    except ValidationError as e:
        if len(e.errors()) == 1:  # the usual case: one line naming file, key and reason
            err = e.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            raise TrainConfigError(f"{path}: invalid train config: {key}: {msg}") from None
        cfg = validate(TrainConfig, raw, path, "train config", TrainConfigError)
    return cfg.resolved(path.parent.resolve())
