"""Tiny random-init models with the block structure of SD 1.5, SD 2.x and SDXL (tests only).

Each family keeps what tells it apart: SD 2.x a GELU text encoder, linear projections in the
transformer blocks and per-block head counts; SDXL two text encoders of different widths (the
second with a projection, as OpenCLIP bigG), the UNet's size/crop embedding and a plain first
block. Saved as diffusers folders; ``craftlora.models.ldm_families`` writes their single files.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import torch
from diffusers import (
    ControlNetModel,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from peft import LoraConfig, get_peft_model_state_dict
from PIL import Image, ImageDraw
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from craftlora.catalog.workspace import Workspace
from craftlora.config import Attribute, WorkspaceConfig
from craftlora.generate.plan_model import GenerationSettings, Plan, PlanEntry, PlanSet, save_plan
from craftlora.generate.prompts import PromptSpec
from craftlora.models.tiny import (
    BASE_CORPUS,
    TinySpec,
    build_scheduler,
    build_vae,
)
from craftlora.models.tokenizer import BOS, EOS, build_clip_tokenizer, load_clip_tokenizer

SPEC = TinySpec(vae_channels=(16, 32), image_size=32)
SIZE = 32  # generation tests' image side
TEXT_1, TEXT_2 = 32, 48  # SDXL's two encoder widths differ, as 768 / 1280 do


def _text(tok, width: int, act: str, projection: bool = False):
    cfg = CLIPTextConfig(
        vocab_size=len(tok), hidden_size=width, intermediate_size=2 * width,
        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=16, hidden_act=act,
        bos_token_id=tok.convert_tokens_to_ids(BOS), eos_token_id=tok.convert_tokens_to_ids(EOS),
        pad_token_id=tok.convert_tokens_to_ids(EOS), projection_dim=width)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg)


def _unet(family: str):
    common = dict(sample_size=SPEC.latent_size, in_channels=4, out_channels=4, layers_per_block=2,
                  norm_num_groups=8)
    if family == "sdxl":
        return UNet2DConditionModel(
            **common, block_out_channels=(16, 32, 32),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=TEXT_1 + TEXT_2, attention_head_dim=(2, 4, 4),
            transformer_layers_per_block=(1, 1, 2), use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=6 * 8 + TEXT_2)
    cross = (True, True, False) if family == "sd2" else (True, False, True)
    return UNet2DConditionModel(
        **common, block_out_channels=(16, 32, 32),
        down_block_types=tuple("CrossAttnDownBlock2D" if c else "DownBlock2D" for c in cross),
        up_block_types=tuple("CrossAttnUpBlock2D" if c else "UpBlock2D" for c in cross[::-1]),
        cross_attention_dim=TEXT_1, attention_head_dim=(2, 4, 4) if family == "sd2" else 8,
        use_linear_projection=family == "sd2")


def build_family(family: str, root: Path, *, seed: int = 0, corpus: tuple[str, ...] = ()):
    """A tiny pipeline of ``family`` (``sd15``, ``sd2``, ``sdxl``), its weights perturbed so
    that no zero-initialised tensor hides a mix-up; saved to ``root/model``: (pipe, folder)."""
    tok_dir = build_clip_tokenizer([BASE_CORPUS, *corpus], root / "tok", vocab_size=700,
                                   max_length=16)
    tok = load_clip_tokenizer(tok_dir)
    torch.manual_seed(seed)
    unet, vae = _unet(family), build_vae(SPEC)
    sched = build_scheduler(SPEC)
    if family == "sdxl":
        pipe = StableDiffusionXLPipeline(
            vae=vae, unet=unet, tokenizer=tok, tokenizer_2=tok,
            text_encoder=_text(tok, TEXT_1, "quick_gelu"),
            text_encoder_2=_text(tok, TEXT_2, "gelu", projection=True),
            scheduler=EulerDiscreteScheduler.from_config(sched.config))
    else:
        if family == "sd2":
            sched = type(sched).from_config(sched.config, prediction_type="v_prediction")
        pipe = StableDiffusionPipeline(
            vae=vae, unet=unet, tokenizer=tok, scheduler=sched, safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
            text_encoder=_text(tok, TEXT_1, "gelu" if family == "sd2" else "quick_gelu"))
    with torch.no_grad():
        for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
            for p in getattr(pipe, name, torch.nn.Linear(1, 1)).parameters():
                p.add_(torch.randn_like(p) * 0.02)
    pipe.set_progress_bar_config(disable=True)
    folder = root / "model"
    pipe.save_pretrained(folder, safe_serialization=True)
    return pipe, folder


def config_copy(folder: Path, out: Path, *, vocab: bool = True) -> Path:
    """``folder`` without weights (and without the vocabulary when ``vocab`` is False)."""
    skip = ["*.safetensors", "*.bin"]
    if not vocab:
        skip += ["vocab.json", "merges.txt", "tokenizer.json"]
    shutil.copytree(folder, out, ignore=shutil.ignore_patterns(*skip))
    return out


def refiner_unet():
    """An SDXL-refiner-style UNet: second encoder only, aesthetic score in the time ids."""
    return UNet2DConditionModel(
        sample_size=SPEC.latent_size, in_channels=4, out_channels=4, layers_per_block=1,
        norm_num_groups=8, block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=TEXT_2,
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=5 * 8 + TEXT_2)


def workspace(tmp_path) -> Workspace:
    cfg = WorkspaceConfig(name="t", caption_template="{glaze} glaze {type}", attributes={
        "glaze": Attribute(values=["white", "celadon"]), "type": Attribute(values=["vase"])})
    return Workspace.create(tmp_path / "ws", cfg)


def plan_file(tmp_path, *, loras=(), sketch="", count=2, model="mini", **gen):
    settings = {"steps": 2, "batch_size": 2, "width": SIZE, "height": SIZE, "sampler": "Euler",
                "cfg": 5.0, "clip_skip": 1, "model": model, **gen}
    plan = Plan(generation=GenerationSettings(**settings),
                prompt=PromptSpec(loras=list(loras), negative="blurry"),
                sets=[PlanSet(name="syn", entries=[PlanEntry(
                    id="a", tier="extreme_rare", count=count, sketch=sketch,
                    attributes={"glaze": "white", "type": "vase"})])])
    path = tmp_path / "plan.toml"
    save_plan(plan, path)
    return path


def pixels(ws, rec) -> np.ndarray:
    return np.asarray(Image.open(ws.resolve(rec.path)).convert("RGB"))


def save_lora(pipe, out_dir: Path, name: str) -> Path:
    """A LoRA on the UNet and the first text encoder, B non-zero so that it changes images."""
    torch.manual_seed(1)
    unet, te = copy.deepcopy(pipe.unet), copy.deepcopy(pipe.text_encoder)
    unet.add_adapter(LoraConfig(r=2, lora_alpha=2, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    te.add_adapter(LoraConfig(r=2, lora_alpha=2, init_lora_weights=False,
                              target_modules=["q_proj", "k_proj", "v_proj", "out_proj"]))
    type(pipe).save_lora_weights(
        out_dir, unet_lora_layers=get_peft_model_state_dict(unet),
        text_encoder_lora_layers=get_peft_model_state_dict(te),
        weight_name=f"{name}.safetensors", safe_serialization=True)
    return out_dir / f"{name}.safetensors"


def save_controlnet(pipe, out_dir: Path) -> Path:
    """A ControlNet made from the pipeline's UNet (perturbed), saved as a diffusers folder."""
    torch.manual_seed(2)
    cn = ControlNetModel.from_unet(pipe.unet, conditioning_embedding_out_channels=(8, 16))
    with torch.no_grad():
        for p in cn.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    cn.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def outline_sketch(path: Path) -> Path:
    img = Image.new("RGB", (SIZE, SIZE), "white")
    ImageDraw.Draw(img).ellipse((6, 4, 26, 28), outline="black", width=2)
    img.save(path)
    return path
