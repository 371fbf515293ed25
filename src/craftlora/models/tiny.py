"""Tiny Stable-Diffusion-style components built from configs in seconds (tests, the mini base).

The same diffusers / transformers classes as SD 1.5 (``UNet2DConditionModel``,
``AutoencoderKL``, ``CLIPTextModel`` + ``CLIPTokenizer``), only smaller. ``TinySpec`` is the
whole recipe, so a model is rebuilt from its spec and a seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from craftlora.models.tokenizer import BOS, EOS, build_clip_tokenizer, load_clip_tokenizer

# Words every tiny tokenizer knows; callers add their own corpus (captions, prompts).
BASE_CORPUS = (
    "a an the of with on in and under above beside near photo picture drawing image of "
    "red orange yellow green blue purple pink brown black white gray grey dark light pale "
    "small large big tiny round square tall short wide narrow striped dotted plain "
    "vase bowl cup plate jar bottle pot dish ewer house tree sun moon sky cloud grass sea "
    "mountain road car boat fish bird flower star circle triangle ball box "
    "glaze celadon blue-and-white porcelain lacquer crackle famille rose dynasty kiln "
    "low quality blurry modern damaged cracked"
)


@dataclass(frozen=True)
class TinySpec:
    """Sizes of a tiny SD-style model; ``image_size / 2**(len(vae_channels)-1)`` = latent size."""

    image_size: int = 32
    vae_channels: tuple[int, ...] = (16, 32)
    vae_layers: int = 1
    latent_channels: int = 4
    unet_channels: tuple[int, ...] = (32, 64)
    unet_layers: int = 1
    unet_attention: tuple[bool, ...] = (True, True)
    attention_head_dim: int = 8
    text_width: int = 32
    text_layers: int = 2
    text_heads: int = 2
    text_ff: int = 64
    max_length: int = 16
    vocab_size: int = 700
    prediction_type: str = "epsilon"

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** (len(self.vae_channels) - 1)

    def to_dict(self) -> dict:
        return asdict(self)


def build_unet(spec: TinySpec):
    from diffusers import UNet2DConditionModel

    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in spec.unet_attention)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(spec.unet_attention))
    return UNet2DConditionModel(
        sample_size=spec.latent_size,
        in_channels=spec.latent_channels,
        out_channels=spec.latent_channels,
        block_out_channels=spec.unet_channels,
        layers_per_block=spec.unet_layers,
        down_block_types=down,
        up_block_types=up,
        cross_attention_dim=spec.text_width,
        attention_head_dim=spec.attention_head_dim,
        norm_num_groups=min(8, spec.unet_channels[0]),
    )


def build_vae(spec: TinySpec):
    from diffusers import AutoencoderKL

    n = len(spec.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=spec.vae_channels,
        layers_per_block=spec.vae_layers,
        latent_channels=spec.latent_channels,
        norm_num_groups=min(8, spec.vae_channels[0]),
        sample_size=spec.image_size,
        scaling_factor=1.0,
    )


def build_text_encoder(spec: TinySpec, tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.text_width,
        intermediate_size=spec.text_ff,
        num_hidden_layers=spec.text_layers,
        num_attention_heads=spec.text_heads,
        max_position_embeddings=spec.max_length,
        bos_token_id=tokenizer.convert_tokens_to_ids(BOS),
        eos_token_id=tokenizer.convert_tokens_to_ids(EOS),
        pad_token_id=tokenizer.convert_tokens_to_ids(EOS),
        projection_dim=spec.text_width,
    )
    return CLIPTextModel(cfg)


def build_scheduler(spec: TinySpec):
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type=spec.prediction_type,
        clip_sample=False,
        steps_offset=1,
    )


def build_tiny_pipeline(
    spec: TinySpec | None = None,
    *,
    seed: int = 0,
    corpus: list[str] | None = None,
    workdir: str | Path | None = None,
):
    """A ``StableDiffusionPipeline`` of freshly initialised tiny components (random weights).

    The tokenizer is trained on ``BASE_CORPUS`` plus ``corpus``; its files go to ``workdir``
    (a temporary folder when omitted).
    """
    import tempfile

    from diffusers import StableDiffusionPipeline

    spec = spec or TinySpec()
    tok_dir = Path(workdir or tempfile.mkdtemp(prefix="craftlora-tok-")) / "tokenizer"
    build_clip_tokenizer(
        [BASE_CORPUS, *(corpus or [])], tok_dir,
        vocab_size=spec.vocab_size, max_length=spec.max_length,
    )
    tokenizer = load_clip_tokenizer(tok_dir)
    torch.manual_seed(seed)
    unet = build_unet(spec)
    vae = build_vae(spec)
    text_encoder = build_text_encoder(spec, tokenizer)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=build_scheduler(spec),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_pipeline(spec: TinySpec | None, out: str | Path, *, seed: int = 0,
                       corpus: list[str] | None = None) -> Path:
    """Build a tiny pipeline and save it as a diffusers folder (safetensors); return the folder."""
    out = Path(out)
    pipe = build_tiny_pipeline(spec, seed=seed, corpus=corpus, workdir=out.parent)
    pipe.save_pretrained(out, safe_serialization=True)
    return out
