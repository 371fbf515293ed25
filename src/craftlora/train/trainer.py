"""The diffusion trainer (modes ``lora`` and ``full``): ``train`` runs the phases in order.

Pre-flight checks (no weights read) → accelerator and resume target → model set-up
(``setup``) → data and caches → optimiser and restored state → the step loop (``steps``) →
saving (``saving``). Determinism and resume are described in ``craftlora.train.steps``:
``n`` processes × batch ``b`` see exactly the samples and noise of one process × batch ``n·b``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, PartialState

from craftlora.data.atomic import atomic_write_json
from craftlora.data.imageio import sha256_file
from craftlora.models.loader import Components, device_name, load_components, module_hash
from craftlora.models.prompt_weights import longer_than_one_chunk, match_lengths
from craftlora.models.text import encode_prompts
from craftlora.train import checkpoint as ckpt
from craftlora.train.buckets import assign_buckets, bucket_info, original_size
from craftlora.train.caption_ops import kohya_steps
from craftlora.train.config import TrainConfig, TrainConfigError
from craftlora.train.data import DiskCache, encode_latents, text_key
from craftlora.train.lora_compute import folded_lora
from craftlora.train.losses import build_perceptual
from craftlora.train.preflight import preflight
from craftlora.train.saving import save_state, validate, write_outputs
from craftlora.train.setup import ModelSetup, optimiser, setup_model, trainable
from craftlora.train.steps import Inputs, StepLog, Stepper, run_steps, set_rng_state
from craftlora.train.style_mode import train_style_mode


class TrainingStopped(RuntimeError):
    """The run stopped early (non-finite loss, or a signal); ``.result`` holds the run summary."""

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


def _data_hash(examples) -> str:
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
    if cfg.mode == "style-contrastive":
        return train_style_mode(cfg, resume=resume, components=components)
    t_start = time.time()
    pre = preflight(cfg, resume=resume, model=components is None)
    pre.require()  # one line, before any weights are read
    out = Path(cfg.output_dir)
    acc, tracker = _accelerator(cfg, out)
    state_in = _resume_target(resume, out / "checkpoints", acc.process_index)

    pred = None if cfg.loss.prediction_type == "auto" else cfg.loss.prediction_type
    setup = setup_model(cfg, components or load_components(
        cfg.model, config=cfg.model_config_dir, tokenizer=cfg.model_tokenizer_dir,
        prediction_type=pred), acc.device, acc.process_index)
    timing: dict[str, float] = {}
    inputs = _inputs(cfg, setup, pre.examples, acc, timing)
    if cfg.epochs:  # kohya's count: epochs × batches of every image × repeats, per bucket
        sizes = list(Counter(inputs.buckets).values()) if inputs.buckets else [len(pre.examples)]
        cfg = cfg.model_copy(update={"max_steps": kohya_steps(
            sizes, cfg.data.num_repeats, cfg.epochs, cfg.batch_size,
            grad_accum=cfg.grad_accum, processes=acc.num_processes)})

    params = trainable(setup.trained)
    optimizer, lr_sched = optimiser(cfg, params)
    prepared = acc.prepare(*setup.trained.values(), optimizer)
    models = dict(zip(setup.trained, prepared[:-1], strict=True))
    optimizer = prepared[-1]
    step = _restore(state_in, params, optimizer, lr_sched, acc) if state_in else 0

    run = _run_record(cfg, acc, setup, inputs, pre.data_info, state_in)
    log = StepLog(out / "log.jsonl", t_start, acc, tracker)
    if acc.is_main_process:
        log.trim(step)  # a resumed run continues the log; it never repeats a step
        atomic_write_json(out / "run.json", {**run, "timings": timing})
        if tracker:
            acc.init_trackers(cfg.name)

    stepper = Stepper(cfg, setup.comp, models, acc, inputs, setup.pred_type, setup.weight_dtype,
                      setup.scaling, setup.shift)
    t_loop = time.time()
    for m in models.values():
        m.train()
    folding = folded_lora(*models.values())
    run["folded_lora_layers"] = folding.__enter__()
    try:
        end = run_steps(
            stepper, step, params, optimizer, lr_sched, log=log, on_step=on_step,
            last_ckpt=state_in["path"] if state_in else None,
            save=lambda s: save_state(acc, out / "checkpoints", s, params, optimizer, lr_sched,
                                      cfg, run),
            validate=lambda s: validate(setup.comp, models, acc, cfg,
                                        out / "samples" / f"step-{s:08d}.png"))
    finally:
        folding.__exit__(None, None, None)
    timing["train_s"] = time.time() - t_loop
    timing["steps_per_s"] = end.steps_run / timing["train_s"] if timing["train_s"] > 0 else 0.0
    return _finish(cfg, acc, setup, models, run, end, timing, t_start, tracker)


def _accelerator(cfg: TrainConfig, out: Path) -> tuple[Accelerator, bool]:
    """The accelerator (and whether a tracker logs); the output folder made, partials cleaned."""
    tracker = False
    if cfg.tensorboard:
        try:
            import tensorboard  # noqa: F401
        except ImportError as e:
            raise RuntimeError("tensorboard = true needs the 'tensorboard' package") from e
        tracker = True
    if cfg.mixed_precision == "fp16" and PartialState().device.type == "cpu":
        # frozen weights go to fp16 and the step relies on autocast, which a CPU has for bf16 only
        raise TrainConfigError('mixed_precision = "fp16" needs a GPU; on a CPU use "bf16" or "no"')
    acc = Accelerator(mixed_precision=cfg.mixed_precision,
                      log_with="tensorboard" if tracker else None, project_dir=str(out / "logs"))
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        ckpt.clean_partial(out / "checkpoints")
    acc.wait_for_everyone()
    return acc, tracker


def _resume_target(resume: str | None, ckpt_root: Path, rank: int) -> dict[str, Any] | None:
    """The loaded checkpoint to resume from, or None to start at step 0."""
    if resume is None:
        return None
    folder = ckpt.latest(ckpt_root) if resume == "latest" else Path(resume)
    if folder is None:
        if rank == 0:
            print(f"no complete checkpoint in {ckpt_root}; starting from step 0", file=sys.stderr)
        return None
    return ckpt.load_checkpoint(folder)


def _inputs(cfg: TrainConfig, setup: ModelSetup, examples: list, acc: Accelerator,
            timing: dict[str, float]) -> Inputs:
    """Data and caches: VAE posteriors and (frozen encoders) caption embeddings, cached on disk.

    The main process fills the caches, then the others read them.
    """
    comp, device = setup.comp, acc.device
    cache = DiskCache(cfg.data.cache_dir or Path(cfg.data.workspace) / ".cache" / "train")
    t0 = time.time()
    lat_info: dict[str, int] = {}
    targets = assign_buckets(examples, cfg.data) if cfg.data.buckets else None
    for turn in ("main", "others"):
        if (turn == "main") == acc.is_main_process:
            mean, std, conds, lat_info = encode_latents(
                examples, cfg.data, comp.vae, setup.vae_hash, cache, device=device,
                targets=targets)
        acc.wait_for_everyone()
    timing["cache_latents_s"] = time.time() - t0
    captions = sorted({e.caption for e in examples} | {""})
    cut = [] if cfg.data.weighted_captions else longer_than_one_chunk(comp.tokenizer, captions)
    if cut and acc.is_main_process:
        print(f"warning: {len(cut)} caption(s) run past {comp.tokenizer.model_max_length - 2} "
              f"tokens and are cut there, e.g. {cut[0][:80]!r}; [data] weighted_captions = true "
              "encodes them whole, in chunks", file=sys.stderr)
    text_table: dict[str, torch.Tensor] | None = None
    if not setup.train_te:
        t0 = time.time()
        te_hash = "|".join(module_hash(te, te.config.to_dict()) for te in comp.text_encoders())
        for turn in ("main", "others"):
            if (turn == "main") == acc.is_main_process:
                text_table = _encode_captions(comp, captions, te_hash, cfg.data.clip_skip,
                                              cache, device, cfg.data.weighted_captions)
            acc.wait_for_everyone()
        timing["cache_text_s"] = time.time() - t0
    perceptual = None
    if cfg.loss.perceptual_weight > 0:
        perceptual = build_perceptual(cfg.loss.perceptual_network,
                                      cfg.loss.perceptual_weights).to(device)
    return Inputs(examples, mean, std, {c: i for i, c in enumerate(captions)}, text_table,
                  perceptual, lat_info, conds, targets, len(cut))


def _restore(state_in: dict[str, Any], params, optimizer, lr_sched, acc: Accelerator) -> int:
    """Put a checkpoint's weights, optimiser, schedule and RNG back; return its step."""
    with torch.no_grad():
        for k, p in params.items():
            if k not in state_in["trainable"]:
                raise ckpt.CheckpointError(f"{state_in['path']}: lacks trainable tensor {k}")
            p.copy_(state_in["trainable"][k].to(p.device, p.dtype))
    optimizer.load_state_dict(state_in["optimizer"])
    lr_sched.load_state_dict(state_in["scheduler"])
    if len(state_in["rng"]) != acc.num_processes:
        raise ckpt.CheckpointError(f"{state_in['path']}: saved by {len(state_in['rng'])} "
                                   f"processes, resumed with {acc.num_processes}")
    set_rng_state(state_in["rng"][acc.process_index])
    return int(state_in["state"]["step"])


def _run_record(cfg: TrainConfig, acc: Accelerator, setup: ModelSetup, inputs: Inputs,
                data_info: dict[str, Any], state_in: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "config": json.loads(cfg.model_dump_json()),
        "seed": cfg.seed,
        "processes": acc.num_processes,
        "data_hash": _data_hash(inputs.examples) if acc.is_main_process else None,
        "n_images": data_info["n_images"],
        "vae_hash": setup.vae_hash,
        "prediction_type": setup.pred_type,
        "perceptual_network": inputs.perceptual.name if inputs.perceptual is not None else None,
        "perceptual_weights_sha256": getattr(inputs.perceptual, "weights_sha256", None),
        "cache": inputs.lat_info,
        "captions_cut": inputs.captions_cut,
        "buckets": bucket_info(inputs.buckets, [original_size(c) for c in inputs.conds])
        if inputs.buckets else None,
        "versions": _versions(),
        "device": device_name(acc.device),
        "resumed_from": str(state_in["path"]) if state_in else None,
        "status": "running",
    }


def _finish(cfg: TrainConfig, acc: Accelerator, setup: ModelSetup, models, run: dict[str, Any],
            end, timing: dict[str, float], t_start: float, tracker: bool) -> dict[str, Any]:
    """Write the outputs of a finished run and ``run.json``; raise if it stopped early."""
    out = Path(cfg.output_dir)
    outputs: dict[str, str] = {}
    if end.status == "finished" and acc.is_main_process:
        outputs = write_outputs(setup.comp, models, acc, cfg, run, end.step)
        if cfg.validation.prompts:
            validate(setup.comp, models, acc, cfg, out / "samples" / "final.png")
    acc.wait_for_everyone()
    result = {**run, "status": end.status, "message": end.message, "step": end.step,
              "steps_this_run": end.steps_run,
              "last_checkpoint": str(end.last_ckpt) if end.last_ckpt else None,
              "outputs": outputs, "timings": timing, "wall_s": time.time() - t_start}
    if acc.is_main_process:
        atomic_write_json(out / "run.json", result)
        if tracker:
            acc.end_training()
    if end.status != "finished":
        raise TrainingStopped(end.message, result)
    return result


def _encode_captions(comp: Components, captions: list[str], te_hash: str, clip_skip: int,
                     cache: DiskCache, device, weighted: bool) -> dict[str, torch.Tensor]:
    rows: list[dict[str, torch.Tensor]] = []
    for c in captions:
        key = text_key(c, te_hash, clip_skip, weighted)
        got = cache.get("text", key)
        if got is None:
            with torch.no_grad():
                enc = encode_prompts(comp, [c], clip_skip=clip_skip, device=device,
                                     weighted=weighted)
            got = {k: v[0].float().cpu() for k, v in enc.items()}
            cache.put("text", key, got)
        rows.append(got)
    hidden = match_lengths(*(r["hidden"][None] for r in rows))  # chunked captions differ
    return {"hidden": torch.cat(hidden), **{k: torch.stack([r[k] for r in rows])
                                            for k in rows[0] if k != "hidden"}}


def _versions() -> dict[str, str]:
    import accelerate
    import diffusers
    import peft
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "accelerate": accelerate.__version__,
            "pid": str(os.getpid())}
