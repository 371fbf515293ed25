"""Model set-up for a run: freeze, add adapters, place and cast; then the optimiser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers.optimization import get_scheduler

from craftlora.models.loader import Components, module_hash
from craftlora.models.lora import add_lora
from craftlora.runtime.optim import adamw
from craftlora.train.config import TrainConfig
from craftlora.train.losses import resolve_prediction_type
from craftlora.train.steps import mix

DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class ModelSetup:
    comp: Components
    trained: dict[str, torch.nn.Module]  # part name → module with trainable parameters
    weight_dtype: torch.dtype
    vae_hash: str
    pred_type: str
    scaling: float
    shift: float

    @property
    def train_te(self) -> bool:
        return any(k.startswith("text_encoder") for k in self.trained)


def _add_adapters(cfg: TrainConfig, comp: Components) -> dict[str, torch.nn.Module]:
    trained: dict[str, torch.nn.Module] = {"unet": comp.unet}
    init = "gaussian" if cfg.lora.init == "gaussian" else True
    add_lora(comp.unet, rank=cfg.lora.rank, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout,
             targets=cfg.lora.target_modules, blocks=cfg.lora.blocks, init=init)
    if cfg.lora.text_encoder:
        for part, te in (("text_encoder", comp.text_encoder),
                         ("text_encoder_2", comp.text_encoder_2)):
            if te is None:
                continue
            add_lora(te, rank=cfg.lora.text_encoder_rank or cfg.lora.rank,
                     alpha=cfg.lora.text_encoder_alpha or cfg.lora.alpha,
                     dropout=cfg.lora.dropout, targets=cfg.lora.text_encoder_targets, init=init)
            trained[part] = te
    return trained


def setup_model(cfg: TrainConfig, comp: Components, device: torch.device,
                rank: int) -> ModelSetup:
    """Freeze the base, add what is trained (same init on every process), place and cast."""
    weight_dtype = DTYPES[cfg.mixed_precision]
    comp.vae.requires_grad_(False)
    for te in comp.text_encoders():
        te.requires_grad_(False)
    comp.unet.requires_grad_(False)
    torch.manual_seed(cfg.seed)  # identical adapter init on every process
    if cfg.mode == "lora":
        trained = _add_adapters(cfg, comp)
    else:
        trained = {"unet": comp.unet}
        comp.unet.requires_grad_(True)
        if cfg.train_text_encoder:
            comp.text_encoder.requires_grad_(True)
            trained["text_encoder"] = comp.text_encoder
    torch.manual_seed(mix(cfg.seed, rank, 0xD0))  # dropout stream, per process
    for m in trained.values():
        m.to(device)  # trainable parameters stay fp32 under fp16/bf16 autocast
        for p in m.parameters():
            if not p.requires_grad:
                p.data = p.data.to(weight_dtype)
    comp.vae.to(device)
    if weight_dtype != torch.float32:
        comp.vae.to(dtype=weight_dtype)
    for te in comp.text_encoders():
        if te not in trained.values():
            te.to(device, dtype=weight_dtype)
    if cfg.gradient_checkpointing:
        comp.unet.enable_gradient_checkpointing()
        for part, m in trained.items():
            if part.startswith("text_encoder"):
                m.gradient_checkpointing_enable()
    return ModelSetup(
        comp=comp, trained=trained, weight_dtype=weight_dtype,
        vae_hash=module_hash(comp.vae, comp.vae.config),
        pred_type=resolve_prediction_type(comp.noise_scheduler, cfg.loss.prediction_type),
        scaling=float(comp.vae.config.scaling_factor),
        shift=float(getattr(comp.vae.config, "shift_factor", None) or 0.0))


def trainable(models: dict[str, torch.nn.Module]) -> dict[str, torch.nn.Parameter]:
    return {f"{part}.{n}": p for part, m in models.items()
            for n, p in m.named_parameters() if p.requires_grad}


def optimiser(cfg: TrainConfig, params: dict[str, torch.nn.Parameter]) -> tuple[Any, Any]:
    """AdamW (UNet and text-encoder groups with their own lr) and its lr schedule."""
    groups = [{"params": [p for k, p in params.items() if k.startswith("unet.")],
               "lr": cfg.optim.lr}]
    te_params = [p for k, p in params.items() if not k.startswith("unet.")]
    if te_params:
        groups.append({"params": te_params, "lr": cfg.lora.text_encoder_lr or cfg.optim.lr})
    optimizer = adamw(groups, lr=cfg.optim.lr, betas=cfg.optim.betas, eps=cfg.optim.eps,
                      weight_decay=cfg.optim.weight_decay)
    lr_sched = get_scheduler(cfg.optim.scheduler, optimizer,
                             num_warmup_steps=cfg.optim.warmup_steps,
                             num_training_steps=cfg.max_steps)
    return optimizer, lr_sched
