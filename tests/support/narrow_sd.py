"""SD 1.5, SD 2.1 and SDXL module trees at narrow widths, random weights, built in seconds.

Block structure as the released models: block types, layers per block, transformer depths
(SDXL: 1, 2, 10), where the channel count changes (so which resnets have a shortcut), linear vs
1×1-conv projections, SDXL's ``text_time`` embedding, CLIP depths (12 layers; SDXL's second
encoder 32 with a projection). Only the widths shrink, so module names are the real ones.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from peft import LoraConfig
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from craftlora.models.kohya_names import sd_scripts_modules

CHANNELS_SD = (32, 64, 128, 128)  # 320, 640, 1280, 1280
CHANNELS_SDXL = (32, 64, 128)  # 320, 640, 1280
TEXT_WIDTH = 32
SDXL_TIME_DIM = 8  # 256


def sd15_unet(seed: int = 0) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8, block_out_channels=CHANNELS_SD, layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=8).eval()


def sd21_unet(seed: int = 0) -> UNet2DConditionModel:
    """SD 2.x: linear projections, per-block heads and the 1024-wide OpenCLIP context."""
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8, block_out_channels=CHANNELS_SD, layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=1024, attention_head_dim=(2, 4, 8, 8),
        use_linear_projection=True).eval()


def sdxl_unet(seed: int = 0) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8, block_out_channels=CHANNELS_SDXL, layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(2, 4, 8),
        cross_attention_dim=2 * TEXT_WIDTH, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=SDXL_TIME_DIM,
        projection_class_embeddings_input_dim=6 * SDXL_TIME_DIM + TEXT_WIDTH).eval()


def clip_text(layers: int, *, projection: bool = False, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    cfg = CLIPTextConfig(hidden_size=TEXT_WIDTH, intermediate_size=2 * TEXT_WIDTH,
                         num_attention_heads=4, num_hidden_layers=layers, vocab_size=1000,
                         max_position_embeddings=77, projection_dim=TEXT_WIDTH,
                         bos_token_id=0, eos_token_id=2, pad_token_id=1)
    cls = CLIPTextModelWithProjection if projection else CLIPTextModel
    return cls(cfg).eval()


def sd15_models(seed: int = 0) -> dict[str, torch.nn.Module]:
    return {"unet": sd15_unet(seed), "text_encoder": clip_text(12, seed=seed + 1)}


def sdxl_models(seed: int = 0) -> dict[str, torch.nn.Module]:
    return {"unet": sdxl_unet(seed), "text_encoder": clip_text(12, seed=seed + 1),
            "text_encoder_2": clip_text(32, projection=True, seed=seed + 2)}


def randomize_lora(model: torch.nn.Module, seed: int, *, std: float = 0.2) -> None:
    """Give every LoRA B (zero at init) random values, so the adapter changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=g) * std)


def _is_3x3(model: torch.nn.Module, name: str) -> bool:
    layer = model.get_submodule(name)
    return isinstance(layer, torch.nn.Conv2d) and layer.kernel_size != (1, 1)


def attach_sd_scripts_adapter(models: dict[str, torch.nn.Module], seed: int, *, rank: int = 4,
                              alpha: float = 8.0, te_alpha: float = 2.0, conv_rank: int = 2,
                              conv_alpha: float = 1.0) -> None:
    """A peft adapter on sd-scripts' targets (UNet with its ``conv_dim`` layers): Linear and
    1×1 layers ``rank``/``alpha`` (``te_alpha`` in text encoders), 3×3 convs ``conv_rank`` /
    ``conv_alpha``. Weights random, rounded to fp16 so an fp16 file holds them exactly."""
    for i, (part, model) in enumerate(models.items()):
        mods = sd_scripts_modules(model, conv=part == "unet")
        convs = [n for n in mods if _is_3x3(model, n)]
        model.add_adapter(LoraConfig(
            r=rank, lora_alpha=alpha if part == "unet" else te_alpha, target_modules=mods,
            rank_pattern={n: conv_rank for n in convs},
            alpha_pattern={n: conv_alpha for n in convs}))
        randomize_lora(model, seed + i)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if ".lora_" in name:
                    p.copy_(p.half().float())


@torch.no_grad()
def outputs(models: dict[str, torch.nn.Module], seed: int = 0) -> dict[str, torch.Tensor]:
    """Fixed-input forward outputs of every part (UNet noise prediction, text hidden states)."""
    g = torch.Generator().manual_seed(seed)
    unet = models["unet"]
    ids = torch.randint(0, 1000, (1, 8), generator=g)
    out = {p: models[p](ids).last_hidden_state for p in ("text_encoder", "text_encoder_2")
           if p in models}
    ctx = torch.randn(1, 8, unet.config.cross_attention_dim, generator=g)
    kw = {}
    if unet.config.addition_embed_type == "text_time":
        kw["added_cond_kwargs"] = {"text_embeds": torch.randn(1, TEXT_WIDTH, generator=g),
                                   "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
    x = torch.randn(1, 4, 8, 8, generator=g)
    out["unet"] = unet(x, 500, encoder_hidden_states=ctx, **kw).sample
    return out


def full_size_models(family: str) -> dict[str, torch.nn.Module]:
    """The released SD 1.5 / SDXL base architectures at full size on the meta device (no
    memory, no weights): the exact module tree, for names."""
    sdxl = family == "sdxl"
    with torch.device("meta"):
        if sdxl:
            unet = UNet2DConditionModel(
                sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2,
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
                cross_attention_dim=2048, use_linear_projection=True,
                addition_embed_type="text_time", addition_time_embed_dim=256,
                projection_class_embeddings_input_dim=2816)
        else:
            unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768,
                                        attention_head_dim=8)  # diffusers' defaults are SD 1.x's
        clip_l = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072,
                                              num_attention_heads=12, num_hidden_layers=12))
        models = {"unet": unet, "text_encoder": clip_l}
        if sdxl:
            models["text_encoder_2"] = CLIPTextModelWithProjection(CLIPTextConfig(
                hidden_size=1280, intermediate_size=5120, num_attention_heads=20,
                num_hidden_layers=32, projection_dim=1280))
    return models
