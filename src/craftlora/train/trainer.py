"""The diffusion trainer (modes ``lora`` and ``full``): one loop, read top to bottom in ``train``.

Determinism: every random draw of a training sample (posterior sample, noise, offset noise,
timestep, flip, caption dropout) comes from a generator seeded by (seed, step, slot), and the
data order of epoch e is a permutation seeded by (seed, e). A run therefore resumes to the exact
batch from its step count alone, and ``n`` processes × batch ``b`` see exactly the samples and
noise of one process × batch ``n·b``. LoRA dropout uses the global RNG, saved per process.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from craftlora.data.atomic import atomic_write_json
from craftlora.models.loader import Components, device_name, load_components, module_hash
from craftlora.models.lora import (
    DIFFUSERS_WEIGHT_NAME,
    adapter_config,
    add_lora,
    lora_state_dict,
    save_diffusers_lora,
    save_kohya_lora,
)
from craftlora.models.text import encode_prompts, sdxl_time_ids
from craftlora.train import checkpoint as ckpt
from craftlora.train.config import TrainConfig, TrainConfigError
from craftlora.train.data import DiskCache, collect_examples, encode_latents, text_key
from craftlora.train.lora_compute import folded_lora
from craftlora.train.losses import (
    build_perceptual,
    min_snr_weights,
    predicted_x0,
    pyramid_noise,
    resolve_prediction_type,
    target_for,
)


class TrainingStopped(RuntimeError):
    """The run stopped early (non-finite loss, or a signal); ``.result`` holds the run summary."""

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


@dataclass
class _Batch:
    latents: torch.Tensor
    captions: list[str]
    text: dict[str, torch.Tensor] | None
    gens: list[torch.Generator]


def _mix(*xs: int) -> int:
    h = hashlib.blake2b(repr(xs).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 63) - 1)


class _Order:
    """The infinite stream of example indices: epoch permutations seeded by (seed, epoch)."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self._perms = n, seed, {}

    def __getitem__(self, pos: int) -> int:
        epoch, i = divmod(pos, self.n)
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(_mix(self.seed, epoch, 0x0D))
            self._perms = {epoch: torch.randperm(self.n, generator=g).tolist()}
        return self._perms[epoch][i]


def _rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state(st["cuda"])


def _trainable(models: dict[str, torch.nn.Module]) -> dict[str, torch.nn.Parameter]:
    return {f"{part}.{n}": p for part, m in models.items()
            for n, p in m.named_parameters() if p.requires_grad}


def _data_hash(examples) -> str:
    from craftlora.data.imageio import sha256_file

    h = hashlib.sha256()
    for e in examples:
        h.update(sha256_file(e.path).encode())
        h.update(e.caption.encode())
    return h.hexdigest()


def train(
    cfg: TrainConfig,
    *,
    resume: str | None = None,
    on_step: Callable[[int, float], None] | None = None,
    components: Components | None = None,
) -> dict[str, Any]:
    """Run (or resume) a training run; return the run summary also written to ``run.json``.

    ``resume``: None (start fresh; refuses an output folder with checkpoints), ``"latest"``
    or a checkpoint folder. ``components``: already loaded model parts to train in place
    (otherwise ``cfg.model`` is loaded). ``on_step(step, loss)`` is called after every step.
    """
    from accelerate import Accelerator, PartialState
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    t_start = time.time()
    out = Path(cfg.output_dir)
    ckpt_root = out / "checkpoints"
    log_with = None
    if cfg.tensorboard:
        try:
            import tensorboard  # noqa: F401
        except ImportError as e:
            raise RuntimeError("tensorboard = true needs the 'tensorboard' package") from e
        log_with = "tensorboard"
    if cfg.mixed_precision == "fp16" and PartialState().device.type == "cpu":
        # frozen weights go to fp16 and the step relies on autocast, which a CPU has for bf16 only
        raise TrainConfigError('mixed_precision = "fp16" needs a GPU; on a CPU use "bf16" or "no"')
    acc = Accelerator(mixed_precision=cfg.mixed_precision, log_with=log_with,
                      project_dir=str(out / "logs"))
    rank, world, device = acc.process_index, acc.num_processes, acc.device
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        ckpt.clean_partial(ckpt_root)
    acc.wait_for_everyone()

    # -- resume target --------------------------------------------------------------------
    state_in = None
    if resume is not None:
        folder = ckpt.latest(ckpt_root) if resume == "latest" else Path(resume)
        if folder is None:
            if rank == 0:
                print(f"no complete checkpoint in {ckpt_root}; starting from step 0",
                      file=sys.stderr)
        else:
            state_in = ckpt.load_checkpoint(folder)
    elif ckpt.complete_checkpoints(ckpt_root):
        raise RuntimeError(f"{out}: has checkpoints already; pass --resume latest to continue "
                           "or choose another output_dir")

    # -- model ----------------------------------------------------------------------------
    weight_dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[
        cfg.mixed_precision]
    comp = components or load_components(cfg.model, config=cfg.model_config_dir)
    comp.vae.requires_grad_(False)
    for te in comp.text_encoders():
        te.requires_grad_(False)
    comp.unet.requires_grad_(False)
    torch.manual_seed(cfg.seed)  # identical adapter init on every process
    trained: dict[str, torch.nn.Module] = {"unet": comp.unet}
    if cfg.mode == "lora":
        add_lora(comp.unet, rank=cfg.lora.rank, alpha=cfg.lora.alpha, dropout=cfg.lora.dropout,
                 targets=cfg.lora.target_modules, blocks=cfg.lora.blocks,
                 init="gaussian" if cfg.lora.init == "gaussian" else True)
        if cfg.lora.text_encoder:
            for part, te in (("text_encoder", comp.text_encoder),
                             ("text_encoder_2", comp.text_encoder_2)):
                if te is None:
                    continue
                add_lora(te, rank=cfg.lora.text_encoder_rank or cfg.lora.rank,
                         alpha=cfg.lora.text_encoder_alpha or cfg.lora.alpha,
                         dropout=cfg.lora.dropout, targets=cfg.lora.text_encoder_targets,
                         init="gaussian" if cfg.lora.init == "gaussian" else True)
                trained[part] = te
    else:
        comp.unet.requires_grad_(True)
        if cfg.train_text_encoder:
            comp.text_encoder.requires_grad_(True)
            trained["text_encoder"] = comp.text_encoder
    torch.manual_seed(_mix(cfg.seed, rank, 0xD0))  # dropout stream, per process
    train_te = any(k.startswith("text_encoder") for k in trained)
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
        if train_te:
            for part in trained:
                if part.startswith("text_encoder"):
                    trained[part].gradient_checkpointing_enable()
    vae_hash = module_hash(comp.vae, comp.vae.config)
    pred_type = resolve_prediction_type(comp.noise_scheduler, cfg.loss.prediction_type)
    scaling = float(comp.vae.config.scaling_factor)
    shift = float(getattr(comp.vae.config, "shift_factor", None) or 0.0)

    # -- data and caches ------------------------------------------------------------------
    examples, data_info = collect_examples(cfg.data)
    cache = DiskCache(cfg.data.cache_dir or Path(cfg.data.workspace) / ".cache" / "train")
    timing: dict[str, float] = {}
    t0 = time.time()
    lat_info: dict[str, int] = {}
    for turn in ("main", "others"):  # the main process fills the cache, the others read it
        if (turn == "main") == acc.is_main_process:
            mean, std, lat_info = encode_latents(examples, cfg.data, comp.vae, vae_hash, cache,
                                                 device=device)
        acc.wait_for_everyone()
    timing["cache_latents_s"] = time.time() - t0
    captions = sorted({e.caption for e in examples} | {""})
    cap_index = {c: i for i, c in enumerate(captions)}
    text_table: dict[str, torch.Tensor] | None = None
    if not train_te:
        t0 = time.time()
        te_hash = "|".join(module_hash(te, te.config.to_dict()) for te in comp.text_encoders())
        for turn in ("main", "others"):
            if (turn == "main") == acc.is_main_process:
                text_table = _encode_captions(comp, captions, te_hash, cfg.data.clip_skip,
                                              cache, device)
            acc.wait_for_everyone()
        timing["cache_text_s"] = time.time() - t0
    perceptual = None
    if cfg.loss.perceptual_weight > 0:
        perceptual = build_perceptual(cfg.loss.perceptual_network,
                                      cfg.loss.perceptual_weights).to(device)

    # -- optimiser, schedule --------------------------------------------------------------
    params = _trainable(trained)
    groups = [{"params": [p for k, p in params.items() if k.startswith("unet.")],
               "lr": cfg.optim.lr}]
    te_params = [p for k, p in params.items() if not k.startswith("unet.")]
    if te_params:
        groups.append({"params": te_params, "lr": cfg.lora.text_encoder_lr or cfg.optim.lr})
    optimizer = torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=cfg.optim.betas,
                                  eps=cfg.optim.eps, weight_decay=cfg.optim.weight_decay)
    lr_sched = get_scheduler(cfg.optim.scheduler, optimizer,
                             num_warmup_steps=cfg.optim.warmup_steps,
                             num_training_steps=cfg.max_steps)
    prepared = acc.prepare(*trained.values(), optimizer)
    models = dict(zip(trained, prepared[:-1], strict=True))
    optimizer = prepared[-1]

    step = 0
    if state_in is not None:
        with torch.no_grad():
            for k, p in params.items():
                if k not in state_in["trainable"]:
                    raise ckpt.CheckpointError(f"{state_in['path']}: lacks trainable tensor {k}")
                p.copy_(state_in["trainable"][k].to(p.device, p.dtype))
        optimizer.load_state_dict(state_in["optimizer"])
        lr_sched.load_state_dict(state_in["scheduler"])
        if len(state_in["rng"]) != world:
            raise ckpt.CheckpointError(f"{state_in['path']}: saved by {len(state_in['rng'])} "
                                       f"processes, resumed with {world}")
        _set_rng_state(state_in["rng"][rank])
        step = int(state_in["state"]["step"])

    run: dict[str, Any] = {
        "config": json.loads(cfg.model_dump_json()),
        "seed": cfg.seed,
        "processes": world,
        "data_hash": _data_hash(examples) if acc.is_main_process else None,
        "n_images": data_info["n_images"],
        "vae_hash": vae_hash,
        "prediction_type": pred_type,
        "perceptual_network": perceptual.name if perceptual is not None else None,
        "cache": lat_info,
        "versions": _versions(),
        "device": device_name(device),
        "resumed_from": str(state_in["path"]) if state_in else None,
        "status": "running",
    }
    if acc.is_main_process:
        atomic_write_json(out / "run.json", {**run, "timings": timing})
        if log_with:
            acc.init_trackers(cfg.name)

    # -- signals: save then exit at the end of the current step ---------------------------
    stop = {"signal": 0}

    def _on_signal(signum, _frame):
        stop["signal"] = signum

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

    order = _Order(len(examples), cfg.seed)
    per_micro = cfg.batch_size * world
    global_batch = per_micro * cfg.grad_accum
    flips = 2 if cfg.data.random_flip else 1

    def make_batch(s: int, micro: int) -> _Batch:
        slots = [micro * per_micro + rank * cfg.batch_size + b for b in range(cfg.batch_size)]
        gens, lat, caps = [], [], []
        for k in slots:
            i = order[s * global_batch + k]
            g = torch.Generator(device=device).manual_seed(_mix(cfg.seed, s, k))
            f = int(torch.randint(0, flips, (1,), generator=g, device=device)) if flips > 1 else 0
            m, sd = mean[i, f].to(device), std[i, f].to(device)
            eps = torch.randn(m.shape, generator=g, device=device)
            lat.append((m + sd * eps - shift) * scaling)
            drop = torch.rand((1,), generator=g, device=device).item() < cfg.data.caption_dropout
            caps.append("" if drop else examples[i].caption)
            gens.append(g)
        text = None
        if text_table is not None:
            idx = torch.tensor([cap_index[c] for c in caps])
            text = {k: v[idx].to(device) for k, v in text_table.items()}
        return _Batch(torch.stack(lat), caps, text, gens)

    def loss_of(b: _Batch) -> torch.Tensor:
        noise, ts = [], []
        for g, x in zip(b.gens, b.latents, strict=True):
            n = torch.randn(x.shape, generator=g, device=device)
            if cfg.loss.noise_offset:
                n = n + cfg.loss.noise_offset * torch.randn(
                    (x.shape[0], 1, 1), generator=g, device=device)
            if cfg.loss.multires_noise_iterations:
                n = pyramid_noise(n, g, cfg.loss.multires_noise_iterations,
                                  cfg.loss.multires_noise_discount)
            noise.append(n)
            ts.append(torch.randint(0, comp.noise_scheduler.config.num_train_timesteps, (1,),
                                    generator=g, device=device))
        noise_t, t = torch.stack(noise), torch.cat(ts)
        noisy = comp.noise_scheduler.add_noise(b.latents, noise_t, t)
        target = target_for(comp.noise_scheduler, b.latents, noise_t, t, pred_type)
        text = b.text or encode_prompts(_unwrapped_comp(comp, models, acc), b.captions,
                                        clip_skip=cfg.data.clip_skip, device=device)
        kwargs = {}
        if comp.is_sdxl:
            kwargs["added_cond_kwargs"] = {
                "text_embeds": text["pooled"].to(weight_dtype),
                "time_ids": sdxl_time_ids(cfg.data.resolution, len(t), device, weight_dtype)}
        with acc.autocast():
            pred = models["unet"](noisy, t, text["hidden"].to(weight_dtype), **kwargs).sample
        per = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
        if cfg.loss.min_snr_gamma:
            per = per * min_snr_weights(comp.noise_scheduler, t, cfg.loss.min_snr_gamma,
                                        pred_type)
        loss = per.mean()
        if perceptual is not None:
            x0 = predicted_x0(comp.noise_scheduler, noisy, pred.float(), t, pred_type)
            with acc.autocast():
                fake = comp.vae.decode(x0 / scaling + shift).sample
                with torch.no_grad():
                    real = comp.vae.decode(b.latents / scaling + shift).sample
            loss = loss + cfg.loss.perceptual_weight * perceptual(fake.float(), real.float())
        return loss

    # -- the loop -------------------------------------------------------------------------
    bar = tqdm(total=cfg.max_steps, initial=step, disable=not acc.is_main_process,
               desc=cfg.name, unit="step", dynamic_ncols=True)
    log_path = out / "log.jsonl"
    t_loop, steps_run, status, message = time.time(), 0, "finished", ""
    last_ckpt = state_in["path"] if state_in else None
    for m in models.values():
        m.train()
    folding = folded_lora(*models.values())
    run["folded_lora_layers"] = folding.__enter__()
    try:
        while step < cfg.max_steps:
            total = torch.zeros((), device=device)
            for micro in range(cfg.grad_accum):
                batch = make_batch(step, micro)
                last = micro == cfg.grad_accum - 1
                ctxs = [acc.no_sync(m) for m in models.values()] if not last else []
                for c in ctxs:
                    c.__enter__()
                try:
                    loss = loss_of(batch) / cfg.grad_accum
                    acc.backward(loss)
                finally:
                    for c in reversed(ctxs):
                        c.__exit__(None, None, None)
                total = total + loss.detach()
            mean_loss = acc.reduce(total, reduction="mean") if world > 1 else total
            loss_value = float(mean_loss)
            if not math.isfinite(loss_value):
                status = "stopped_nonfinite"
                message = (f"non-finite loss ({loss_value}) at step {step + 1}; stopped without "
                           f"saving. Last good checkpoint: {last_ckpt or 'none'}")
                break
            if cfg.optim.max_grad_norm:
                gn = acc.clip_grad_norm_(list(params.values()), cfg.optim.max_grad_norm)
                if gn is not None and not torch.isfinite(torch.as_tensor(gn)).all() and \
                        cfg.mixed_precision != "fp16":
                    status = "stopped_nonfinite"
                    message = (f"non-finite gradient at step {step + 1}; stopped without "
                               f"saving. Last good checkpoint: {last_ckpt or 'none'}")
                    break
            optimizer.step()
            lr_sched.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            steps_run += 1
            if acc.is_main_process:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr_sched.get_last_lr()[0]:.2e}")
                if step % cfg.log_every == 0 or step == cfg.max_steps:
                    with open(log_path, "a", encoding="utf-8") as f:
                        f.write(json.dumps({"step": step, "loss": loss_value,
                                            "lr": lr_sched.get_last_lr()[0],
                                            "t": round(time.time() - t_start, 3)}) + "\n")
                    if log_with:
                        acc.log({"loss": loss_value, "lr": lr_sched.get_last_lr()[0]}, step=step)
            if on_step:
                on_step(step, loss_value)
            sig = stop["signal"]
            if world > 1:
                flag = acc.reduce(torch.tensor(float(sig), device=device), reduction="sum")
                sig = int(flag.item() > 0) and (sig or signal.SIGTERM)
            if step % cfg.checkpoint_every == 0 or step == cfg.max_steps or sig:
                last_ckpt = _save(acc, ckpt_root, step, params, optimizer, lr_sched, cfg, run)
            if cfg.validation.prompts and cfg.validation.every and \
                    step % cfg.validation.every == 0 and acc.is_main_process:
                _validate(comp, models, acc, cfg, out / "samples" / f"step-{step:08d}.png")
            if sig:
                status = "interrupted"
                message = f"stopped by signal {sig} after step {step}; saved {last_ckpt}"
                break
    finally:
        bar.close()
        folding.__exit__(None, None, None)
        for s, h in old.items():
            signal.signal(s, h)
    timing["train_s"] = time.time() - t_loop
    timing["steps_per_s"] = steps_run / timing["train_s"] if timing["train_s"] > 0 else 0.0
    outputs: dict[str, str] = {}
    if status == "finished" and acc.is_main_process:
        outputs = _write_outputs(comp, models, acc, cfg, run, step)
        if cfg.validation.prompts:
            _validate(comp, models, acc, cfg, out / "samples" / "final.png")
    acc.wait_for_everyone()
    result = {**run, "status": status, "message": message, "step": step,
              "steps_this_run": steps_run, "last_checkpoint": str(last_ckpt) if last_ckpt else None,
              "outputs": outputs, "timings": timing, "wall_s": time.time() - t_start}
    if acc.is_main_process:
        atomic_write_json(out / "run.json", result)
        if log_with:
            acc.end_training()
    if status != "finished":
        raise TrainingStopped(message, result)
    return result


def _unwrapped_comp(comp: Components, models, acc) -> Components:
    from dataclasses import replace

    kw = {k: acc.unwrap_model(v) for k, v in models.items() if k.startswith("text_encoder")}
    return replace(comp, **kw) if kw else comp


def _encode_captions(comp: Components, captions: list[str], te_hash: str, clip_skip: int,
                     cache: DiskCache, device) -> dict[str, torch.Tensor]:
    rows: list[dict[str, torch.Tensor]] = []
    for c in captions:
        key = text_key(c, te_hash, clip_skip)
        got = cache.get("text", key)
        if got is None:
            with torch.no_grad():
                enc = encode_prompts(comp, [c], clip_skip=clip_skip, device=device)
            got = {k: v[0].float().cpu() for k, v in enc.items()}
            cache.put("text", key, got)
        rows.append(got)
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


def _save(acc, root: Path, step: int, params, optimizer, lr_sched, cfg: TrainConfig,
          run: dict) -> Path:
    """All processes contribute their RNG state; the main process writes the folder."""
    from accelerate.utils import gather_object

    rng = gather_object([_rng_state()]) if acc.num_processes > 1 else [_rng_state()]
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


def _write_outputs(comp: Components, models, acc, cfg: TrainConfig, run: dict,
                   step: int) -> dict[str, str]:
    out = Path(cfg.output_dir)
    unet = acc.unwrap_model(models["unet"])
    if cfg.mode == "full":
        from dataclasses import replace

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
        "ss_dataset_hash": run["data_hash"], "ss_base_model": cfg.model,
        "craftlora_config": json.dumps(run["config"]),
    }
    kohya = save_kohya_lora(out / f"{cfg.name}.safetensors", parts, sdxl=comp.is_sdxl,
                            metadata=meta)
    return {"lora_diffusers": str(diff), "lora_kohya": str(kohya),
            "lora_dir": str(lora_dir), "weight_name": DIFFUSERS_WEIGHT_NAME}


def _validate(comp: Components, models, acc, cfg: TrainConfig, path: Path) -> None:
    from dataclasses import replace

    from diffusers import DPMSolverMultistepScheduler
    from PIL import Image

    parts = {k: acc.unwrap_model(v) for k, v in models.items()}
    vcomp = replace(comp, **parts)
    was = {k: m.training for k, m in parts.items()}
    for m in parts.values():
        m.eval()
    rng = _rng_state()
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
        _set_rng_state(rng)
        for k, m in parts.items():
            m.train(was[k])
    grid = Image.new("RGB", (res * len(images), res))
    for i, im in enumerate(images):
        grid.paste(im, (i * res, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def _versions() -> dict[str, str]:
    import accelerate
    import diffusers
    import peft
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "accelerate": accelerate.__version__,
            "pid": str(os.getpid())}
