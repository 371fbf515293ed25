"""Saving: resumable checkpoints during the run, the trained LoRA or model at its end, samples."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from craftlora.data.paths import confined
from craftlora.models.loader import Components
from craftlora.models.lora import (
    DIFFUSERS_WEIGHT_NAME,
    adapter_config,
    lora_state_dict,
    save_diffusers_lora,
    save_kohya_lora,
)
from craftlora.train import checkpoint as ckpt
from craftlora.train.config import TrainConfig
from craftlora.train.steps import rng_state, set_rng_state


def save_state(acc, root: Path, step: int, params, optimizer, lr_sched, cfg: TrainConfig,
          run: dict) -> Path:
    """All processes contribute their RNG state; the main process writes the folder."""
    from accelerate.utils import gather_object

    rng = gather_object([rng_state()]) if acc.num_processes > 1 else [rng_state()]
    path = ckpt.step_dir(root, step)
    if acc.is_main_process:
        path = ckpt.save_checkpoint(
            root, step,
            trainable={k: p.detach().float() for k, p in params.items()},
            optimizer=optimizer.state_dict(), scheduler=lr_sched.state_dict(), rng=rng,
            state={"seed": cfg.seed, "processes": acc.num_processes,
                   "data_hash": run["data_hash"], "mode": cfg.mode,
                   "order": "epoch permutations seeded by (seed, epoch); stream position = "
                            "step × global batch"},
            keep_last=cfg.keep_last)
    acc.wait_for_everyone()
    return path


def write_outputs(comp: Components, models, acc, cfg: TrainConfig, run: dict,
                   step: int) -> dict[str, str]:
    out = Path(cfg.output_dir)
    unet = acc.unwrap_model(models["unet"])
    if cfg.mode == "full":
        parts = {k: acc.unwrap_model(v) for k, v in models.items()}
        full = replace(comp, unet=parts["unet"],
                       text_encoder=parts.get("text_encoder", comp.text_encoder))
        for m in (full.unet, full.vae, *full.text_encoders()):
            m.to("cpu", torch.float32)
        pipe = full.pipeline()
        pipe.save_pretrained(out / "model", safe_serialization=True)
        (out / "model" / "craftlora_train.json").write_text(
            json.dumps({"config": run["config"], "step": step, "data_hash": run["data_hash"]},
                       indent=2))
        return {"model": str(out / "model")}
    parts: dict[str, tuple[dict, dict]] = {"unet": (lora_state_dict(unet), adapter_config(unet))}
    for k, m in models.items():
        if k.startswith("text_encoder"):
            te = acc.unwrap_model(m)
            parts[k] = (lora_state_dict(te), adapter_config(te))
    lora_dir = out / "lora"
    lora_dir.mkdir(parents=True, exist_ok=True)
    diff = save_diffusers_lora(lora_dir, parts, sdxl=comp.is_sdxl)
    meta = {
        "ss_output_name": cfg.name, "ss_steps": step, "ss_max_train_steps": cfg.max_steps,
        "ss_learning_rate": cfg.optim.lr, "ss_seed": cfg.seed,
        "ss_num_train_images": run["n_images"],
        "ss_resolution": f"({cfg.data.resolution}, {cfg.data.resolution})",
        "ss_clip_skip": cfg.data.clip_skip + 1, "ss_noise_offset": cfg.loss.noise_offset,
        "ss_multires_noise_iterations": cfg.loss.multires_noise_iterations,
        "ss_multires_noise_discount": cfg.loss.multires_noise_discount,
        "ss_min_snr_gamma": cfg.loss.min_snr_gamma,
        "ss_v_parameterization": run["prediction_type"] == "v_prediction",
        "ss_batch_size_per_device": cfg.batch_size,
        "ss_gradient_accumulation_steps": cfg.grad_accum,
        "ss_mixed_precision": cfg.mixed_precision, "ss_lr_scheduler": cfg.optim.scheduler,
        "ss_dataset_hash": run["data_hash"],
        "ss_sd_model_name": Path(cfg.model).name,  # sd-scripts writes the base's file name only
        "ss_unet_lr": cfg.optim.lr,
        "ss_text_encoder_lr": (cfg.lora.text_encoder_lr or cfg.optim.lr)
        if cfg.lora.text_encoder else None,
        "craftlora_config": json.dumps(run["config"]),
    }
    if run.get("buckets"):  # kohya's bucket keys
        meta.update({"ss_enable_bucket": True, "ss_bucket_info": json.dumps(run["buckets"]),
                     "ss_min_bucket_reso": cfg.data.min_bucket_reso,
                     "ss_max_bucket_reso": cfg.data.max_bucket_reso,
                     "ss_bucket_no_upscale": cfg.data.bucket_no_upscale})
    kohya = save_kohya_lora(confined(out, f"{cfg.name}.safetensors"), parts,
                            unet_config=unet.config, prediction_type=run["prediction_type"],
                            metadata=meta)
    return {"lora_diffusers": str(diff), "lora_kohya": str(kohya),
            "lora_dir": str(lora_dir), "weight_name": DIFFUSERS_WEIGHT_NAME}


def validate(comp: Components, models, acc, cfg: TrainConfig, path: Path) -> None:
    from diffusers import DPMSolverMultistepScheduler
    from PIL import Image

    parts = {k: acc.unwrap_model(v) for k, v in models.items()}
    vcomp = replace(comp, **parts)
    was = {k: m.training for k, m in parts.items()}
    for m in parts.values():
        m.eval()
    rng = rng_state()
    try:
        pipe = vcomp.pipeline(DPMSolverMultistepScheduler.from_config(
            comp.noise_scheduler.config, use_karras_sigmas=True))
        res = cfg.data.resolution
        images = []
        for i, prompt in enumerate(cfg.validation.prompts):
            g = torch.Generator(device=comp.unet.device).manual_seed(cfg.validation.seed + i)
            with torch.no_grad():
                images += pipe(prompt, num_inference_steps=cfg.validation.steps,
                               guidance_scale=cfg.validation.guidance, height=res, width=res,
                               generator=g).images
    finally:
        set_rng_state(rng)
        for k, m in parts.items():
            m.train(was[k])
    grid = Image.new("RGB", (res * len(images), res))
    for i, im in enumerate(images):
        grid.paste(im, (i * res, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
