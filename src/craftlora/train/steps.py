"""The step loop: which samples and noise each step draws, its loss, and the loop itself.

Every random draw of a training sample (posterior sample, noise, offset noise, timestep, flip,
caption dropout, tag shuffle and tag dropout) comes from a generator seeded by (seed, step,
slot), and the data order of epoch e is a permutation, seeded by (seed, e), of every example
``num_repeats`` times (kohya's epoch). A run therefore resumes to the exact batch from
its step count alone. LoRA dropout uses the global RNG, saved per process by the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from craftlora.models.loader import Components
from craftlora.models.text import encode_prompts
from craftlora.train.caption_ops import process_caption
from craftlora.train.config import TrainConfig
from craftlora.train.losses import min_snr_weights, predicted_x0, pyramid_noise, target_for


def mix(*xs: int) -> int:
    """A 63-bit seed from a tuple of integers (stable across runs and machines)."""
    h = hashlib.blake2b(repr(xs).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 63) - 1)


def rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state(st["cuda"])


class Order:
    """The infinite stream of example indices: epoch permutations seeded by (seed, epoch)."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self._perms = n, seed, {}

    def __getitem__(self, pos: int) -> int:
        epoch, i = divmod(pos, self.n)
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(mix(self.seed, epoch, 0x0D))
            self._perms = {epoch: torch.randperm(self.n, generator=g).tolist()}
        return self._perms[epoch][i]


class BucketOrder:
    """Like ``Order``, with every batch (positions ``p // batch``) from one bucket.

    Each epoch shuffles every bucket (seeded by seed, epoch, bucket), cuts it into batches (a
    last short batch is filled from the start of the same bucket) and shuffles the batches. It
    depends on ``batch`` (n processes × b is not one process × n·b, as on the square path)."""

    def __init__(self, bucket_of: list[tuple[int, int]], batch: int, seed: int):
        self.batch, self.seed = batch, seed
        self.members: dict[tuple[int, int], list[int]] = {}
        for i, b in enumerate(bucket_of):
            self.members.setdefault(b, []).append(i)
        self.per_epoch = sum(math.ceil(len(m) / batch) for m in self.members.values())
        self._epoch: dict[int, list[list[int]]] = {}

    def _batches(self, epoch: int) -> list[list[int]]:
        if epoch not in self._epoch:
            out = []
            for k, (_, idx) in enumerate(sorted(self.members.items())):
                g = torch.Generator().manual_seed(mix(self.seed, epoch, k, 0xB0))
                perm = [idx[j] for j in torch.randperm(len(idx), generator=g).tolist()]
                perm += perm * math.ceil(self.batch / len(perm))  # fill the last batch
                n = math.ceil(len(idx) / self.batch)
                out += [perm[j * self.batch:(j + 1) * self.batch] for j in range(n)]
            g = torch.Generator().manual_seed(mix(self.seed, epoch, 0xB1))
            self._epoch = {epoch: [out[j] for j in torch.randperm(len(out), generator=g)]}
        return self._epoch[epoch]

    def __getitem__(self, pos: int) -> int:
        group, slot = divmod(pos, self.batch)
        epoch, g = divmod(group, self.per_epoch)
        return self._batches(epoch)[g][slot]



@dataclass
class Batch:
    latents: torch.Tensor
    captions: list[str]
    text: dict[str, torch.Tensor] | None
    gens: list[torch.Generator]
    time_ids: torch.Tensor  # [B, 6] SDXL size conditioning of each sample


@dataclass
class Inputs:
    """What the data phase hands the loop: cached posteriors [F, C, h, w] and SDXL size
    conditioning [F, 6] per example (F = 2 with random flips), captions, text embeddings;
    ``buckets``: each example's bucket (w, h) when batches keep to one bucket."""

    examples: list[Any]
    mean: list[torch.Tensor]
    std: list[torch.Tensor]
    cap_index: dict[str, int]
    text_table: dict[str, torch.Tensor] | None
    perceptual: Any
    lat_info: dict[str, int] = field(default_factory=dict)
    conds: list[torch.Tensor] = field(default_factory=list)
    buckets: list[tuple[int, int]] | None = None
    captions_cut: int = 0  # captions a literal encoding cuts at the tokenizer's length


@dataclass
class Stepper:
    """Makes the batch of (step, micro-step) and computes its loss; no state between steps."""

    cfg: TrainConfig
    comp: Components
    models: dict[str, torch.nn.Module]
    acc: Any
    inputs: Inputs
    pred_type: str
    weight_dtype: torch.dtype
    scaling: float
    shift: float

    def __post_init__(self) -> None:
        self.device = self.acc.device
        self.n, repeats = len(self.inputs.examples), self.cfg.data.num_repeats
        self.order = Order(self.n * repeats, self.cfg.seed) \
            if self.inputs.buckets is None else \
            BucketOrder(self.inputs.buckets * repeats, self.cfg.batch_size, self.cfg.seed)
        self.per_micro = self.cfg.batch_size * self.acc.num_processes
        self.global_batch = self.per_micro * self.cfg.grad_accum
        self.flips = 2 if self.cfg.data.random_flip else 1

    def batch(self, s: int, micro: int) -> Batch:
        cfg, device, inp = self.cfg, self.device, self.inputs
        rank = self.acc.process_index
        slots = [micro * self.per_micro + rank * cfg.batch_size + b for b in range(cfg.batch_size)]
        gens, lat, caps, conds = [], [], [], []
        for k in slots:
            i = self.order[s * self.global_batch + k] % self.n  # kohya repeats
            g = torch.Generator(device=device).manual_seed(mix(cfg.seed, s, k))
            f = int(torch.randint(0, self.flips, (1,), generator=g, device=device)) \
                if self.flips > 1 else 0
            m, sd = inp.mean[i][f].to(device), inp.std[i][f].to(device)
            conds.append(inp.conds[i][f])
            eps = torch.randn(m.shape, generator=g, device=device)
            lat.append((m + sd * eps - self.shift) * self.scaling)
            drop = torch.rand((1,), generator=g, device=device).item() < cfg.data.caption_dropout
            caps.append("" if drop else self.caption(inp.examples[i].caption, s, k))
            gens.append(g)
        text = None  # a shuffled caption is not in the cached table: encoded in the step
        if inp.text_table is not None and all(c in inp.cap_index for c in caps):
            idx = torch.tensor([inp.cap_index[c] for c in caps])
            text = {k: v[idx].to(device) for k, v in inp.text_table.items()}
        return Batch(torch.stack(lat), caps, text, gens, torch.stack(conds).to(device))

    def caption(self, caption: str, s: int, k: int) -> str:
        """The caption of slot ``k`` at step ``s`` after kohya's shuffle and tag dropout; its
        own CPU generator, so turning these on leaves every noise draw as it was."""
        d = self.cfg.data
        if not d.shuffle_caption and d.caption_tag_dropout_rate <= 0:
            return caption
        g = torch.Generator().manual_seed(mix(self.cfg.seed, s, k, 0xCA))
        return process_caption(caption, keep_tokens=d.keep_tokens, shuffle=d.shuffle_caption,
                               tag_dropout=d.caption_tag_dropout_rate, generator=g)

    def _noise(self, b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, device = self.cfg, self.device
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
            ts.append(torch.randint(0, self.comp.noise_scheduler.config.num_train_timesteps,
                                    (1,), generator=g, device=device))
        return torch.stack(noise), torch.cat(ts)

    def loss(self, b: Batch) -> torch.Tensor:
        cfg, comp, acc, sched = self.cfg, self.comp, self.acc, self.comp.noise_scheduler
        noise_t, t = self._noise(b)
        noisy = sched.add_noise(b.latents, noise_t, t)
        target = target_for(sched, b.latents, noise_t, t, self.pred_type)
        text = b.text or encode_prompts(unwrapped(comp, self.models, acc), b.captions,
                                        clip_skip=cfg.data.clip_skip, device=self.device,
                                        weighted=cfg.data.weighted_captions)
        kwargs = {}
        if comp.is_sdxl:
            kwargs["added_cond_kwargs"] = {"text_embeds": text["pooled"].to(self.weight_dtype),
                                           "time_ids": b.time_ids.to(self.weight_dtype)}
        with acc.autocast():
            pred = self.models["unet"](noisy, t, text["hidden"].to(self.weight_dtype),
                                       **kwargs).sample
        per = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
        if cfg.loss.min_snr_gamma:
            per = per * min_snr_weights(sched, t, cfg.loss.min_snr_gamma, self.pred_type)
        loss = per.mean()
        if self.inputs.perceptual is not None:
            x0 = predicted_x0(sched, noisy, pred.float(), t, self.pred_type)
            with acc.autocast():
                fake = comp.vae.decode(x0 / self.scaling + self.shift).sample
                with torch.no_grad():
                    real = comp.vae.decode(b.latents / self.scaling + self.shift).sample
            loss = loss + cfg.loss.perceptual_weight * self.inputs.perceptual(
                fake.float(), real.float())
        return loss


def unwrapped(comp: Components, models, acc) -> Components:
    """``comp`` with the trained text encoders unwrapped from accelerate's wrappers."""
    kw = {k: acc.unwrap_model(v) for k, v in models.items() if k.startswith("text_encoder")}
    return replace(comp, **kw) if kw else comp


@dataclass
class LoopEnd:
    step: int
    steps_run: int
    status: str  # finished, interrupted, stopped_nonfinite
    message: str
    last_ckpt: Path | None


def one_step(stepper: Stepper, step: int, params, optimizer, lr_sched) -> tuple[float, str]:
    """Forward, backward and optimiser step of ``step``; (loss, '' or why it stopped)."""
    cfg, acc = stepper.cfg, stepper.acc
    total = torch.zeros((), device=acc.device)
    for micro in range(cfg.grad_accum):
        batch = stepper.batch(step, micro)
        last = micro == cfg.grad_accum - 1
        ctxs = [acc.no_sync(m) for m in stepper.models.values()] if not last else []
        for c in ctxs:
            c.__enter__()
        try:
            loss = stepper.loss(batch) / cfg.grad_accum
            acc.backward(loss)
        finally:
            for c in reversed(ctxs):
                c.__exit__(None, None, None)
        total = total + loss.detach()
    mean_loss = acc.reduce(total, reduction="mean") if acc.num_processes > 1 else total
    loss_value = float(mean_loss)
    if not math.isfinite(loss_value):
        return loss_value, f"non-finite loss ({loss_value}) at step {step + 1}"
    if cfg.optim.max_grad_norm:
        gn = acc.clip_grad_norm_(list(params.values()), cfg.optim.max_grad_norm)
        if gn is not None and not torch.isfinite(torch.as_tensor(gn)).all() and \
                cfg.mixed_precision != "fp16":
            return loss_value, f"non-finite gradient at step {step + 1}"
    optimizer.step()
    lr_sched.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_value, ""


def run_steps(stepper: Stepper, step: int, params, optimizer, lr_sched, *,
              save: Callable[[int], Path], validate: Callable[[int], None],
              log: Callable[[int, float, float], None], last_ckpt: Path | None,
              on_step: Callable[[int, float], None] | None = None) -> LoopEnd:
    """Steps until ``max_steps``, a signal (save, then stop) or a non-finite loss (stop)."""
    cfg, acc = stepper.cfg, stepper.acc
    stop = {"signal": 0}

    def _on_signal(signum, _frame):
        stop["signal"] = signum

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    bar = tqdm(total=cfg.max_steps, initial=step, disable=not acc.is_main_process,
               desc=cfg.name, unit="step", dynamic_ncols=True)
    steps_run, status, message = 0, "finished", ""
    try:
        while step < cfg.max_steps:
            loss_value, why = one_step(stepper, step, params, optimizer, lr_sched)
            if why:
                status = "stopped_nonfinite"
                message = (f"{why}; stopped without saving. Last good checkpoint: "
                           f"{last_ckpt or 'none'}")
                break
            step += 1
            steps_run += 1
            lr = lr_sched.get_last_lr()[0]
            if acc.is_main_process:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}")
                if step % cfg.log_every == 0 or step == cfg.max_steps:
                    log(step, loss_value, lr)
            if on_step:
                on_step(step, loss_value)
            sig = stop["signal"]
            if acc.num_processes > 1:
                flag = acc.reduce(torch.tensor(float(sig), device=acc.device), reduction="sum")
                sig = int(flag.item() > 0) and (sig or signal.SIGTERM)
            if step % cfg.checkpoint_every == 0 or step == cfg.max_steps or sig:
                last_ckpt = save(step)
            if cfg.validation.prompts and cfg.validation.every and \
                    step % cfg.validation.every == 0 and acc.is_main_process:
                validate(step)
            if sig:
                status = "interrupted"
                message = f"stopped by signal {sig} after step {step}; saved {last_ckpt}"
                break
    finally:
        bar.close()
        for s, h in old.items():
            signal.signal(s, h)
    return LoopEnd(step, steps_run, status, message, last_ckpt)


class StepLog:
    """``log.jsonl``: one line per logged step; on resume, cut back to the checkpoint's step."""

    def __init__(self, path: Path, t_start: float, acc: Any, tracker: bool):
        self.path, self.t_start, self.acc, self.tracker = path, t_start, acc, tracker

    def trim(self, step: int) -> None:
        """Keep only whole lines of steps ≤ ``step`` (a killed run's later lines go)."""
        from craftlora.data.atomic import atomic_write_bytes

        if not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                if int(json.loads(line)["step"]) <= step:
                    keep.append(line + "\n")
            except (ValueError, KeyError, TypeError):
                continue  # a half-written last line
        atomic_write_bytes(self.path, "".join(keep).encode())

    def __call__(self, step: int, loss: float, lr: float) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, "loss": loss, "lr": lr,
                                "t": round(time.time() - self.t_start, 3)}) + "\n")
        if self.tracker:
            self.acc.log({"loss": loss, "lr": lr}, step=step)
