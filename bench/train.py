"""LoRA training speed: ``craftlora train`` vs the plain diffusers-example recipe, same run.

    .venv/bin/python -m bench.train [--steps 40] [--batch 32] [--images 360] [--model auto]

Both arms train the same LoRA (UNet attention projections, same rank, alpha, LR, optimiser,
schedule, clipping, batch and step count) on the same base model and the same workspace images
and captions, each in its own subprocess, so its peak memory is its own:

- ``craftlora``: ``load_train_config`` + ``train`` on a train.toml (exactly what
  ``craftlora train CONFIG.toml`` runs): latents and text embeddings are encoded once into the
  on-disk cache (counted in the end-to-end wall time), each step reads them; LoRA layers run
  folded into their frozen weight where that is fewer multiply-adds
  (``craftlora.train.lora_compute``: rank 32 on the mini base's 64/128-wide attention);
- ``diffusers_recipe``: the loop of diffusers'
  ``examples/text_to_image/train_text_to_image_lora.py``: ``unet.add_adapter(LoraConfig(...))``,
  a DataLoader that decodes, resizes, crops, normalises and tokenises on every access,
  ``vae.encode(...).latent_dist.sample()`` and ``text_encoder(input_ids)`` every step, no
  caching; written out here because the example script itself is not installed.

Reported per arm: training-loop steps/s (imports, model loading and, for craftlora, cache
filling excluded), end-to-end wall time (process start, imports included, to saved LoRA),
peak RSS (and peak CUDA memory on a GPU). ``--model auto`` uses the bundled mini base
(``src/craftlora/mini/base``), else the freshly built one in ``bench-out/minibase/base``, else
a random tiny model (32 px). Prints one JSON document and writes ``bench-out/train.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

T_START = time.time()  # before torch / diffusers are imported: wall times include imports
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-out"
TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]  # the example's UNet LoRA targets
CAPTION_TEMPLATE = "{dynasty} {kiln} {glaze} {type}"  # the demo's short mini-kiln caption


# -- setup (parent process) ---------------------------------------------------------------

def resolve_model(choice: str, work: Path) -> tuple[str, int, str]:
    """(loader source, image size, description)."""
    candidates = [ROOT / "src" / "craftlora" / "mini" / "base", OUT / "minibase" / "base"]
    if choice == "auto":
        for c in candidates:
            if (c / "model_index.json").is_file():
                return str(c), 64, f"mini base ({c.relative_to(ROOT)})"
        choice = "tiny"
    if choice == "tiny":
        from craftlora.models.tiny import TinySpec, save_tiny_pipeline

        folder = work / "tiny-model"
        if not (folder / "model_index.json").is_file():
            save_tiny_pipeline(TinySpec(), folder, seed=0)
        return str(folder), 32, "tiny TinySpec() random weights, 32 px"
    from craftlora.models.loader import load_components

    comp = load_components(choice)
    size = comp.unet.config.sample_size * comp.vae_scale_factor
    return choice, int(size), choice


def build_workspace(work: Path, n: int, size: int) -> Path:
    """A mini-kiln workspace of ``n`` images at ``size`` px, split and captioned."""
    from craftlora.catalog.captions import write_captions
    from craftlora.catalog.ingest import ingest
    from craftlora.catalog.split import assign_splits
    from craftlora.catalog.workspace import Workspace
    from craftlora.config import CONFIG_NAME
    from craftlora.mini.kiln import workspace_config
    from craftlora.mini.render import render_kiln

    ws_dir = work / f"ws-{n}-{size}"
    if (ws_dir / CONFIG_NAME).is_file():
        return ws_dir
    src = work / "render"
    labels = render_kiln(src, n=n, seed=0, size=size, workers=1)
    cfg = workspace_config("bench-train").model_copy(update={"caption_template": CAPTION_TEMPLATE})
    with Workspace.create(ws_dir, cfg) as ws:
        ingest(ws, src, labels=labels, progress=False, workers=1)
        assign_splits(ws, seed=0)
        write_captions(ws)
    shutil.rmtree(src, ignore_errors=True)
    return ws_dir


def write_config(path: Path, model: str, ws: Path, size: int, a: argparse.Namespace,
                 extra: dict | None = None) -> Path:
    """The run's train.toml; ``extra`` adds top-level keys (``mixed_precision``, ...)."""
    import tomli_w

    cfg = {
        "name": "bench", "mode": "lora", "model": model, "output_dir": str(path.parent / "run"),
        "seed": 0, "max_steps": a.steps, "batch_size": a.batch,
        "checkpoint_every": a.steps, "keep_last": 1, "log_every": 10,
        "lora": {"rank": a.rank, "alpha": float(a.rank), "target_modules": TARGETS},
        "data": {"workspace": str(ws), "resolution": size, "center_crop": True,
                 "cache_dir": str(path.parent / "cache")},
        "optim": {"lr": a.lr, "scheduler": "constant", "weight_decay": 1e-2,
                  "max_grad_norm": 1.0},
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(cfg), encoding="utf-8")
    return path


# -- the two arms (child processes) -------------------------------------------------------

def _peak() -> dict[str, float | None]:
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB → MiB on Linux
    cuda = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {"peak_rss_mib": round(rss, 1),
            "peak_cuda_mib": None if cuda is None else round(cuda, 1)}


class StepClock:
    """Wall and process-CPU time of the steps after the first (the first pays one-off
    allocations): CPU seconds per step move far less than wall time when other work shares
    the cores."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, float]] = []

    def __call__(self, *_: object) -> None:
        self.marks.append((time.perf_counter(), time.process_time()))

    def summary(self) -> dict[str, float | None]:
        if len(self.marks) < 2:
            return {"steady_wall_s_per_step": None, "steady_cpu_s_per_step": None}
        (w0, c0), (w1, c1), n = self.marks[0], self.marks[-1], len(self.marks) - 1
        return {"steady_wall_s_per_step": (w1 - w0) / n, "steady_cpu_s_per_step": (c1 - c0) / n}


def arm_craftlora(config: Path) -> dict:
    from craftlora.train.config import load_train_config
    from craftlora.train.trainer import train

    cfg = load_train_config(config)
    for p in (Path(cfg.output_dir), Path(cfg.data.cache_dir)):
        shutil.rmtree(p, ignore_errors=True)  # cold caches: their filling is in the wall time
    clock = StepClock()
    res = train(cfg, on_step=clock)
    t = res["timings"]
    return {"steps": res["step"], "loop_s": t["train_s"], "steps_per_s": t["steps_per_s"],
            "cache_latents_s": t.get("cache_latents_s"), "cache_text_s": t.get("cache_text_s"),
            **clock.summary(), "wall_s": time.time() - T_START, **_peak()}


def arm_recipe(config: Path) -> dict:
    """The train_text_to_image_lora.py loop on the same settings (read from the same TOML)."""
    import torch
    import torch.nn.functional as F
    from accelerate import Accelerator
    from diffusers import StableDiffusionPipeline
    from diffusers.optimization import get_scheduler
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from PIL import Image
    from torchvision import transforms

    from craftlora.models.loader import load_components
    from craftlora.train.config import load_train_config
    from craftlora.train.data import collect_examples

    cfg = load_train_config(config)
    out = Path(cfg.output_dir).parent / "recipe-run"
    shutil.rmtree(out, ignore_errors=True)
    acc = Accelerator(mixed_precision=cfg.mixed_precision)
    torch.manual_seed(cfg.seed)
    comp = load_components(cfg.model)
    unet, vae, text_encoder, tokenizer = comp.unet, comp.vae, comp.text_encoder, comp.tokenizer
    noise_scheduler = comp.noise_scheduler
    for m in (unet, vae, text_encoder):
        m.requires_grad_(False)
    weight_dtype = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[
        cfg.mixed_precision]
    unet.add_adapter(LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha,
                                init_lora_weights="gaussian",
                                target_modules=cfg.lora.target_modules))
    unet.to(acc.device)
    vae.to(acc.device, dtype=weight_dtype)
    text_encoder.to(acc.device, dtype=weight_dtype)
    lora_layers = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(lora_layers, lr=cfg.optim.lr, betas=cfg.optim.betas,
                                  weight_decay=cfg.optim.weight_decay, eps=cfg.optim.eps)

    examples, _ = collect_examples(cfg.data)
    res = cfg.data.resolution
    tf = transforms.Compose([
        transforms.Resize(res, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(res), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])

    class Data(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(examples)

        def __getitem__(self, i: int) -> dict:
            e = examples[i]
            ids = tokenizer(e.caption, max_length=tokenizer.model_max_length,
                            padding="max_length", truncation=True, return_tensors="pt").input_ids
            return {"pixel_values": tf(Image.open(e.path).convert("RGB")), "input_ids": ids[0]}

    def collate(rows: list[dict]) -> dict:
        return {"pixel_values": torch.stack([r["pixel_values"] for r in rows]).float(),
                "input_ids": torch.stack([r["input_ids"] for r in rows])}

    loader = torch.utils.data.DataLoader(Data(), shuffle=True, collate_fn=collate,
                                         batch_size=cfg.batch_size, num_workers=0)
    lr_scheduler = get_scheduler(cfg.optim.scheduler, optimizer,
                                 num_warmup_steps=cfg.optim.warmup_steps,
                                 num_training_steps=cfg.max_steps)
    unet, optimizer, loader, lr_scheduler = acc.prepare(unet, optimizer, loader, lr_scheduler)

    step, t_loop, clock = 0, time.time(), StepClock()
    unet.train()
    while step < cfg.max_steps:
        for batch in loader:
            latents = vae.encode(batch["pixel_values"].to(weight_dtype)).latent_dist.sample()
            latents = latents * vae.config.scaling_factor
            noise = torch.randn_like(latents)
            t = torch.randint(0, noise_scheduler.config.num_train_timesteps,
                              (latents.shape[0],), device=latents.device).long()
            noisy = noise_scheduler.add_noise(latents, noise, t)
            hidden = text_encoder(batch["input_ids"], return_dict=False)[0]
            target = noise if noise_scheduler.config.prediction_type == "epsilon" else \
                noise_scheduler.get_velocity(latents, noise, t)
            pred = unet(noisy, t, hidden, return_dict=False)[0]
            loss = F.mse_loss(pred.float(), target.float(), reduction="mean")
            acc.backward(loss)
            if acc.sync_gradients and cfg.optim.max_grad_norm:
                acc.clip_grad_norm_(lora_layers, cfg.optim.max_grad_norm)
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()
            step += 1
            clock()
            if step >= cfg.max_steps:
                break
    loop_s = time.time() - t_loop
    from diffusers.utils import convert_state_dict_to_diffusers

    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(acc.unwrap_model(unet)))
    StableDiffusionPipeline.save_lora_weights(out, unet_lora_layers=layers,
                                              safe_serialization=True)
    return {"steps": step, "loop_s": loop_s, "steps_per_s": step / loop_s, **clock.summary(),
            "wall_s": time.time() - T_START, **_peak()}


# -- driver -------------------------------------------------------------------------------

def run_arm(arm: str, config: Path, threads: int) -> dict:
    cmd = [sys.executable, "-m", "bench.train", "--arm", arm, "--config", str(config),
           "--threads", str(threads)]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"arm {arm} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = round(time.time() - t0, 2)
    return result


def steady_cpu_speedup(arms: dict) -> float | None:
    """Recipe CPU seconds per steady step over craftlora's (None with under two steps)."""
    ours = arms["craftlora"].get("steady_cpu_s_per_step")
    base = arms["diffusers_recipe"].get("steady_cpu_s_per_step")
    return round(base / ours, 3) if ours and base else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="auto", help="auto | tiny | a loader source")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--images", type=int, default=360, help="rendered; ~70 %% land in train")
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per arm")
    ap.add_argument("--work", type=Path, default=OUT / "train-work")
    ap.add_argument("--arm", choices=["craftlora", "diffusers_recipe"], help=argparse.SUPPRESS)
    ap.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    if a.arm:
        fn = arm_craftlora if a.arm == "craftlora" else arm_recipe
        print(json.dumps(fn(a.config)))
        return

    a.work = a.work.resolve()  # the TOML resolves relative paths against its own folder
    a.work.mkdir(parents=True, exist_ok=True)
    model, size, desc = resolve_model(a.model, a.work)
    ws = build_workspace(a.work, a.images, size)
    config = write_config(a.work / "craftlora" / "train.toml", model, ws, size, a)
    from craftlora.train.config import load_train_config
    from craftlora.train.data import collect_examples

    n_train = len(collect_examples(load_train_config(config).data)[0])
    arms = {arm: run_arm(arm, config, a.threads) for arm in ("diffusers_recipe", "craftlora")}
    ours, base = arms["craftlora"], arms["diffusers_recipe"]
    result = {
        "benchmark": "train",
        "what": "LoRA training steps/s and peak memory: craftlora train (cached latents and "
                "text embeddings) vs the diffusers train_text_to_image_lora recipe (VAE and "
                "text encoder every step); same model, data, batch, LoRA, optimiser, steps",
        "model": desc, "resolution": size, "train_images": n_train, "batch": a.batch,
        "steps": a.steps, "rank": a.rank, "alpha": float(a.rank), "targets": TARGETS,
        "lr": a.lr, "threads": a.threads, "device": "cuda" if torch.cuda.is_available() else "cpu",
        "arms": arms,
        "speedup_loop": round(ours["steps_per_s"] / base["steps_per_s"], 3),
        "speedup_end_to_end": round(base["wall_s"] / ours["wall_s"], 3),
        "speedup_steady_cpu": steady_cpu_speedup(arms),
        "peak_rss_ratio": round(ours["peak_rss_mib"] / base["peak_rss_mib"], 3),
        "target_speedup": 1.5,
        "host": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                 "torch": torch.__version__},
    }
    result["meets_target"] = result["speedup_loop"] >= 1.5
    OUT.mkdir(exist_ok=True)
    (OUT / "train.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
