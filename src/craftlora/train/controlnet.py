"""Train a ControlNet from a base UNet on (outline sketch, image, caption) triples.

The ControlNet starts as a copy of the base UNet's encoder (``ControlNetModel.from_unet``,
zero-initialised output convolutions, so step 0 leaves the base unchanged); the base (UNet,
VAE, text encoder) stays frozen. Latents and text embeddings of the whole pool are computed
once; each step draws a batch, noises it and regresses the UNet's prediction (ε or v, from the
scheduler config) with the ControlNet's residuals added. Captions are dropped to "" with
probability ``caption_dropout`` so classifier-free guidance keeps working. ``timesteps="cubic"``
draws t = (1 − u³)·T (T2I-Adapter's schedule), which favours the noisy steps where the layout
is decided. With ``work_dir`` the run checkpoints (weights as safetensors, optimizer and RNG
state loadable with ``weights_only=True``) and a rerun resumes where it stopped; a resumed run
draws the same batches as an uninterrupted one.

The mini world's triples: ``craftlora.mini.outlines.mini_outline_triples``; scoring a trained
ControlNet: ``craftlora.generate.contour.evaluate_contour``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ControlNetModel, DDPMScheduler
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from craftlora.data.atomic import atomic_write_json
from craftlora.models.condition import CONDITION_FILE, Triple, condition_array
from craftlora.models.text import diffusers_clip_skip, encode_text


class ControlNetTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=1500, ge=1)
    batch_size: int = Field(default=16, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    weight_decay: float = Field(default=1e-2, ge=0)
    seed: int = 0
    caption_dropout: float = Field(default=0.1, ge=0, le=1)
    clip_skip: int = Field(default=2, ge=1, description="A1111 convention, as at generation")
    conditioning_channels: list[int] | None = Field(
        default=None, description="None = 16, 32, ... one stage per VAE downsampling"
    )
    grad_clip: float = Field(default=1.0, gt=0)
    timesteps: Literal["uniform", "cubic"] = "uniform"
    condition: Literal["outline", "outline+fill"] = "outline"
    log_every: int = Field(default=50, ge=1)
    checkpoint_every: int = Field(default=100, ge=1)


def _condition(edges: np.ndarray, condition: str = "outline") -> torch.Tensor:
    """The 3-channel condition in [0, 1], as the pipeline feeds a ControlNet."""
    return torch.from_numpy(condition_array(edges, condition)).permute(2, 0, 1).float() / 255.0


def _auto_channels(vae: Any) -> list[int]:
    stages = len(vae.config.block_out_channels)  # downsampling = 2 ** (stages - 1)
    return [16 * 2**i for i in range(stages)]


@torch.no_grad()
def _encode_pool(
    pipe: Any,
    triples: Sequence[Triple],
    clip_skip: int | None,
    condition: str = "outline",
    batch: int = 64,
):
    vae = pipe.vae
    lat, emb, cond = [], [], []
    for s in range(0, len(triples), batch):
        chunk = triples[s : s + batch]
        imgs = torch.stack(
            [torch.from_numpy(t[1]).permute(2, 0, 1).float() / 127.5 - 1.0 for t in chunk]
        ).to(vae.device, vae.dtype)
        lat.append(vae.encode(imgs).latent_dist.mean * vae.config.scaling_factor)
        emb.append(encode_text(pipe, [t[2] for t in chunk], clip_skip, weighted=False))
        cond.append(torch.stack([_condition(t[0], condition) for t in chunk]))
    empty = encode_text(pipe, [""], clip_skip, weighted=False)
    return torch.cat(lat), torch.cat(emb), torch.cat(cond), empty


def train_controlnet(
    pipe: Any,
    triples: Sequence[Triple],
    out_dir: str | Path,
    config: ControlNetTrainConfig | None = None,
    *,
    work_dir: str | Path | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train a ControlNet for ``pipe``'s base on ``triples``; save it (safetensors) to ``out_dir``.

    With ``work_dir`` a checkpoint is kept there every ``checkpoint_every`` steps and a rerun
    resumes from it. ``stop_after`` ends this call after that many steps (checkpointed, nothing
    saved to ``out_dir``; returns ``{"stopped_at": step}``): the next call continues.
    Returns a summary (config, losses, wall time) that is also written to ``out_dir/train.json``.
    """
    cfg = config or ControlNetTrainConfig()
    if not triples:
        raise ValueError("train_controlnet needs at least one (sketch, image, caption) triple")
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    device = pipe.unet.device
    for m in (pipe.unet, pipe.vae, pipe.text_encoder):
        m.requires_grad_(False)
        m.eval()
    channels = cfg.conditioning_channels or _auto_channels(pipe.vae)
    cn = ControlNetModel.from_unet(
        pipe.unet, conditioning_embedding_out_channels=tuple(channels)
    ).to(device)
    cn.train()
    noise_sched = DDPMScheduler.from_config(pipe.scheduler.config)
    latents, embs, conds, empty = _encode_pool(
        pipe, triples, diffusers_clip_skip(cfg.clip_skip), cfg.condition
    )
    opt = torch.optim.AdamW(cn.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    losses: list[float] = []
    run = _Resumable(cn, opt, gen, losses)
    start, prior_s = 0, 0.0
    ckpt = Path(work_dir) / "checkpoint" if work_dir is not None else None
    if ckpt is not None and (ckpt / "state.json").is_file():
        start, prior_s = _load_checkpoint(ckpt, cfg, len(triples), run)
    bar = None
    if progress:
        bar = tqdm(total=cfg.steps, initial=start, desc="controlnet", unit="step")
    n = len(triples)
    T = noise_sched.config.num_train_timesteps
    run_t0 = time.perf_counter()
    for step in range(start, cfg.steps):
        idx = torch.randint(0, n, (cfg.batch_size,), generator=gen)
        lat = latents[idx].to(device)
        emb = embs[idx].clone()
        drop = torch.rand(cfg.batch_size, generator=gen) < cfg.caption_dropout
        emb[drop] = empty
        emb = emb.to(device)
        cond = conds[idx].to(device, lat.dtype)
        noise = torch.randn(lat.shape, generator=gen).to(device)
        if cfg.timesteps == "cubic":
            u = torch.rand(cfg.batch_size, generator=gen)
            t = ((1 - u**3) * T).long().clamp(0, T - 1).to(device)
        else:
            t = torch.randint(0, T, (cfg.batch_size,), generator=gen).to(device)
        noisy = noise_sched.add_noise(lat, noise, t)
        down, mid = cn(noisy, t, encoder_hidden_states=emb, controlnet_cond=cond, return_dict=False)
        pred = pipe.unet(
            noisy,
            t,
            encoder_hidden_states=emb,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample
        if noise_sched.config.prediction_type == "v_prediction":
            target = noise_sched.get_velocity(lat, noise, t)
        else:
            target = noise
        loss = F.mse_loss(pred.float(), target.float())
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"ControlNet training: loss is {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(cn.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(float(loss.item()))
        done = step + 1
        if bar is not None:
            bar.update(1)
            if step % cfg.log_every == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-cfg.log_every :]):.4f}")
        stop = stop_after is not None and done - start >= stop_after and done < cfg.steps
        if ckpt is not None and (done % cfg.checkpoint_every == 0 or done == cfg.steps or stop):
            _save_checkpoint(ckpt, cfg, n, run, done, prior_s + time.perf_counter() - run_t0)
        if stop:
            if bar is not None:
                bar.close()
            return {"stopped_at": done}
    if bar is not None:
        bar.close()
    train_s = prior_s + time.perf_counter() - run_t0
    cn.eval()
    out = Path(out_dir)
    _save_atomic(cn, out, {CONDITION_FILE: json.dumps({"condition": cfg.condition})})
    k = max(1, cfg.log_every)
    summary = {
        "config": cfg.model_dump(),
        "conditioning_channels": channels,
        "parameters": int(sum(p.numel() for p in cn.parameters())),
        "pool": n,
        "steps": cfg.steps,
        "resumed_from": start,
        "loss_first": float(np.mean(losses[:k])),
        "loss_last": float(np.mean(losses[-k:])),
        "loss_curve": [float(np.mean(losses[i : i + k])) for i in range(0, len(losses), k)],
        "train_s": round(train_s, 1),
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    atomic_write_json(out / "train.json", summary)
    return summary


@contextlib.contextmanager
def _swapped_in(out: Path) -> Iterator[Path]:
    """A fresh sibling temp folder to fill; on success it replaces ``out`` whole."""
    tmp = out.with_name(f".tmp-{out.name}-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    yield tmp
    if out.exists():
        old = out.with_name(f".old-{out.name}-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)


@dataclass
class _Resumable:
    """What a checkpoint holds besides the config: weights, optimizer, RNG and losses."""

    cn: Any
    opt: torch.optim.Optimizer
    gen: torch.Generator
    losses: list[float]


def _save_checkpoint(ckpt: Path, cfg: ControlNetTrainConfig, pool: int, run: _Resumable,
                     step: int, train_s: float) -> None:
    """Weights (safetensors), optimizer + RNG state (plain tensors) and step, swapped in whole."""
    with _swapped_in(ckpt) as tmp:
        weights = {k: v.contiguous() for k, v in run.cn.state_dict().items()}
        save_file(weights, tmp / "controlnet.safetensors")
        torch.save({"opt": run.opt.state_dict(), "rng": run.gen.get_state()},
                   tmp / "optimizer.pt")
        state = {"step": step, "pool": pool, "config": cfg.model_dump(), "losses": run.losses,
                 "train_s": train_s}
        (tmp / "state.json").write_text(json.dumps(state))


def _load_checkpoint(ckpt: Path, cfg: ControlNetTrainConfig, pool: int, run: _Resumable
                     ) -> tuple[int, float]:
    """Restore a checkpoint made with the same config and pool; return (step, train seconds)."""
    try:
        state = json.loads((ckpt / "state.json").read_text())
        weights = load_file(str(ckpt / "controlnet.safetensors"))
        extra = torch.load(ckpt / "optimizer.pt", weights_only=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"{ckpt}: unreadable ControlNet checkpoint: {e}") from e
    mine = cfg.model_dump()
    theirs = {"condition": "outline", **state["config"]}  # older checkpoints: outline
    for key in ("steps", "log_every", "checkpoint_every"):  # may change between runs
        mine.pop(key)
        theirs.pop(key, None)
    if theirs != mine or state["pool"] != pool:
        raise ValueError(
            f"{ckpt}: checkpoint was made with another config or pool "
            f"({state['pool']} triples); use a fresh work folder"
        )
    run.cn.load_state_dict(weights)
    run.opt.load_state_dict(extra["opt"])
    run.gen.set_state(extra["rng"])
    run.losses.extend(state["losses"])
    return int(state["step"]), float(state.get("train_s", 0.0))


def _save_atomic(model: Any, out: Path, extra: dict[str, str] | None = None) -> None:
    """save_pretrained into a sibling temp folder, then swap it in (never half a model)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with _swapped_in(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text)
