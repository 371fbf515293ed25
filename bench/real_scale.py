"""Full-size SD 1.5 / SD 2.1 / SDXL: craftlora against the plain diffusers recipes.

    .venv/bin/python -m bench.real_scale [--families sd15,sd21,sdxl] [--size 128]
        [--train-steps 6] [--batch 1] [--gen-images 8] [--gen-batch 2] [--gen-steps 8]
        [--precision fp32] [--pairs 1] [--gpu]

For each family a random-weight model of the real architecture (the diffusers configs shipped
in ``craftlora/models/configs``, no hub) is built once into ``bench-out/real-scale/<family>/``
and measured, every arm in its own process (its peak memory is its own):

- **LoRA training** (``bench.train``'s two arms): craftlora's trainer (cached latents and text
  embeddings) vs the loop of diffusers' ``train_text_to_image_lora.py`` (VAE encode and text
  encode every step, peft LoRA on ``to_q/to_k/to_v/to_out.0``, AdamW); same rank, alpha, lr,
  batch, steps, resolution and images. Loop steps/s and peak memory.
- **Generation**: a plain ``StableDiffusionPipeline`` loop (``bench.generate.diffusers_loop``)
  vs ``craftlora generate``'s runner (the plan's levers = ``ARM_LEVERS``), same prompts,
  seeds, batch, sampler, steps and CFG; images/s, peak memory, and the Fréchet distance
  between the two image sets next to the seed-to-seed spread (the plain loop again with other
  seeds). The features are FID's Inception when ``craftlora weights`` has it registered, else
  8×8 pixel thumbnails (named in the JSON).
- **Levers**: the UNet forward at the generation shape with each lever of
  ``craftlora.models.fast`` alone, interleaved rounds (each timed call after an untimed one on
  the freshly applied lever), median seconds.

With ``--pairs N`` the craftlora and baseline arms of training and generation run back to back
N times and each speedup is the median of the N pairs' ratios (this CPU's speed drifts between
identical runs minutes apart, so a single pair can read a third high or low).

A family whose fp32 weights would not fit in the memory available is skipped with the reason.
``--gpu`` measures at each family's native size (512 / 768 / 1024 px) with fp16 and bf16.
Prints one JSON document and writes ``bench-out/real_scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import craftlora.models

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-out"
WORK = OUT / "real-scale"
DTYPES = {"fp32": "no", "fp16": "fp16", "bf16": "bf16"}
# the plan's [generation] levers in the craftlora generation arm (docs/results.md, issue 23:
# fused QKV and channels-last measured no gain on a CPU in fp32; bf16 does on AVX-512-BF16 / AMX)
ARM_LEVERS = ["bf16"]
CORPUS = ["a white porcelain vase", "a blue glazed bowl", "lacquer panel with gold inlay",
          "embroidered silk, red thread", "a character in a green coat"]


# -- models ---------------------------------------------------------------------------------

CONFIGS = Path(craftlora.models.__file__).parent / "configs"  # shipped for single files
FAMILIES = {  # family → (the shipped diffusers config folder, native size in px)
    "sd15": ("sd15", 512),
    "sd21": ("sd2-768-v", 768),
    "sdxl": ("sdxl-base", 1024),
}


def _config(family: str, part: str) -> dict:
    folder = CONFIGS / FAMILIES[family][0] / part
    name = "scheduler_config.json" if part == "scheduler" else "config.json"
    return json.loads((folder / name).read_text(encoding="utf-8"))


def _modules(family: str, device: str):
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.device(device):
        mods = {"unet": UNet2DConditionModel.from_config(_config(family, "unet")),
                "vae": AutoencoderKL.from_config(_config(family, "vae")),
                "text_encoder": CLIPTextModel(
                    CLIPTextConfig.from_dict(_config(family, "text_encoder")))}
        if (CONFIGS / FAMILIES[family][0] / "text_encoder_2").is_dir():
            mods["text_encoder_2"] = CLIPTextModelWithProjection(
                CLIPTextConfig.from_dict(_config(family, "text_encoder_2")))
    return mods


def parameter_counts(family: str) -> dict[str, int]:
    """Parameters per part, counted on the meta device (no memory used)."""
    return {k: sum(p.numel() for p in m.parameters())
            for k, m in _modules(family, "meta").items()}


def mem_available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("inf")


def build_model(family: str, folder: Path, seed: int = 0) -> Path:
    """A random-weight diffusers folder of the family's real architecture (kept for reruns)."""
    if (folder / "COMPLETE").is_file():
        return folder
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    from craftlora.models.tokenizer import build_clip_tokenizer

    shutil.rmtree(folder, ignore_errors=True)
    tok_dir = build_clip_tokenizer(CORPUS, folder / "_tokenizer", vocab_size=600, max_length=77)
    tok = CLIPTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(seed)
    mods = _modules(family, "cpu")
    for k in ("text_encoder", "text_encoder_2"):
        if k in mods:
            mods[k].config.update({"bos_token_id": tok.bos_token_id,
                                   "eos_token_id": tok.eos_token_id,
                                   "pad_token_id": tok.pad_token_id})
    sched = DDIMScheduler.from_config(_config(family, "scheduler"))
    if "text_encoder_2" in mods:
        pipe = StableDiffusionXLPipeline(tokenizer=tok, tokenizer_2=tok, scheduler=sched, **mods)
    else:
        pipe = StableDiffusionPipeline(tokenizer=tok, scheduler=sched, safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False,
                                       **mods)
    pipe.save_pretrained(folder, safe_serialization=True)
    shutil.rmtree(tok_dir)
    (folder / "COMPLETE").write_text(json.dumps({"family": family, "seed": seed}))
    return folder


# -- child arms ------------------------------------------------------------------------------

def _peak() -> dict:
    from bench.train import _peak as peak

    return peak()


def _load_pipe(folder: Path, precision: str, device: str, plain: bool):
    import torch

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    if plain:
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline.from_pretrained(
            folder, torch_dtype=dtype, safety_checker=None, requires_safety_checker=False,
            local_files_only=True)
    else:
        from craftlora.models.loader import load_components

        pipe = load_components(folder, dtype=dtype).pipeline()
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def arm_generate(a: argparse.Namespace) -> dict:
    """One generation arm: ``plain`` (seed base 0), ``spread`` (plain, seed base 1) or
    ``craftlora``; images go to ``a.images_dir``."""
    from bench.generate import bench_plan, craftlora_run, diffusers_loop, jobs_of, warm_up
    from craftlora.generate.plan_model import save_plan
    from craftlora.generate.samplers import set_sampler

    plain = a.arm in ("plain", "spread")
    pipe = _load_pipe(a.model_dir, a.precision, a.device, plain)
    set_sampler(pipe, "DPM++ 2M Karras")
    plan = bench_plan(a.gen_images, a.gen_steps, a.gen_batch, size=a.size,
                      seed=1 if a.arm == "spread" else 0, levers=None if plain else a.levers)
    work = Path(a.images_dir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    warm_up(pipe, a.size)
    record: dict = {}
    cpu0 = time.process_time()
    if plain:
        jobs = jobs_of(plan, work / "jobs")
        dt = diffusers_loop(pipe, plan, jobs, work / "images", a.size)
        loop_rate = a.gen_images / dt
        for j in jobs:  # the same name as the runner's file: pairs by seed
            p = work / "images" / f"{j.gen_id}.png"
            p.rename(p.with_name(Path(j.path).name))
    else:
        plan_path = work / "plan.toml"
        save_plan(plan, plan_path)
        dt, loop_rate, record = craftlora_run(pipe, plan_path, work / "ws", a.gen_images)
        pngs = sorted((work / "ws").rglob("*.png"))
        (work / "images").mkdir()
        for p in pngs:
            shutil.copy(p, work / "images" / p.name)
    cpu_s = time.process_time() - cpu0  # less moved than wall time by other work
    return {"seconds": round(dt, 3), "images_per_s": round(a.gen_images / dt, 4),
            "loop_images_per_s": round(loop_rate, 4), "cpu_s": round(cpu_s, 2),
            "levers": record, **_peak()}


def arm_levers(a: argparse.Namespace) -> dict:
    """The UNet forward at the generation shape (CFG pair batched), each lever alone."""
    import torch
    from diffusers import UNet2DConditionModel

    from craftlora.models.fast import LEVERS, levers_applied

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[a.precision]
    unet = UNet2DConditionModel.from_pretrained(a.model_dir / "unet", torch_dtype=dtype)
    unet.eval().to(a.device)
    pipe = SimpleNamespace(unet=unet)
    n, s = 2 * a.gen_batch, a.size // 8
    g = torch.Generator("cpu").manual_seed(0)
    x = torch.randn(n, 4, s, s, generator=g).to(a.device, dtype)
    ctx = torch.randn(n, 77, unet.config.cross_attention_dim, generator=g).to(a.device, dtype)
    t = torch.full((n,), 500, device=a.device)
    kw = {}
    if unet.config.addition_embed_type == "text_time":
        kw["added_cond_kwargs"] = {"text_embeds": torch.randn(n, 1280).to(a.device, dtype),
                                   "time_ids": torch.tensor([[a.size, a.size, 0, 0, a.size,
                                                              a.size]] * n).to(a.device, dtype)}

    def once() -> tuple[float, torch.Tensor]:
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        y = unet(x, t, ctx, **kw).sample
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0, y

    arms = ["none", *LEVERS]
    times: dict[str, list[float]] = {k: [] for k in arms}
    diff: dict[str, float] = {}
    with torch.inference_mode():
        once()
        ref = once()[1]
        for _ in range(a.rounds):
            for arm in arms:
                with levers_applied(pipe, [] if arm == "none" else [arm]):
                    once()  # the first call on newly cast or laid-out weights is slower
                    dt, y = once()
                times[arm].append(dt)
                diff[arm] = float((y.float() - ref.float()).abs().max())
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"median_s": {k: round(v, 4) for k, v in med.items()},
            "speedup": {k: round(med["none"] / v, 3) for k, v in med.items()},
            "max_abs_diff_vs_none": diff, "rounds": a.rounds, "batch_with_cfg": n, **_peak()}


def arm_components(a: argparse.Namespace) -> dict:
    """The training step's parts timed in interleaved rounds in one process (medians), so
    load from other work hits every part alike: the LoRA UNet step both arms run, and the VAE
    encode and text encode that the diffusers recipe adds to every step and craftlora reads
    from its cache. Their sum over the UNet step is the loop speedup they predict."""
    import torch
    import torch.nn.functional as F
    from peft import LoraConfig

    from bench.train import TARGETS
    from craftlora.models.loader import load_components

    comp = load_components(a.model_dir)
    unet, vae, te = comp.unet, comp.vae, comp.text_encoder
    for m in (unet, vae, te):
        m.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=a.rank, lora_alpha=a.rank, init_lora_weights="gaussian",
                                target_modules=TARGETS))
    unet.train()
    opt = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-4)
    g = torch.Generator().manual_seed(0)
    b, s = a.batch, a.size
    pix = torch.rand(b, 3, s, s, generator=g) * 2 - 1
    ids = comp.tokenizer(["a white porcelain vase"] * b, padding="max_length", max_length=77,
                         truncation=True, return_tensors="pt").input_ids
    lat = torch.randn(b, 4, s // 8, s // 8, generator=g)
    with torch.no_grad():
        hidden = te(ids)[0]

    def unet_step() -> None:
        noise = torch.randn(lat.shape, generator=g)
        t = torch.randint(0, 1000, (b,), generator=g)
        loss = F.mse_loss(unet(lat + noise, t, hidden).sample, noise)
        loss.backward()
        opt.step()
        opt.zero_grad()

    @torch.no_grad()
    def vae_encode() -> None:
        vae.encode(pix).latent_dist.sample()

    @torch.no_grad()
    def text_encode() -> None:
        te(ids)

    parts = {"unet_lora_step": unet_step, "vae_encode": vae_encode, "text_encode": text_encode}
    times: dict[str, list[float]] = {k: [] for k in parts}
    for f in parts.values():
        f()  # first-call allocations
    for _ in range(a.rounds):
        for k, f in parts.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"median_s": {k: round(v, 4) for k, v in med.items()}, "rounds": a.rounds,
            "batch": b, "size": s, "rank": a.rank,
            "predicted_loop_speedup": round(sum(med.values()) / med["unet_lora_step"], 3),
            **_peak()}


def run_child(args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "bench.real_scale", *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- measurement per family ----------------------------------------------------------------

def image_set_fd(dirs: dict[str, Path]) -> dict:
    """FD(plain, craftlora) and FD(plain, spread) on one feature network, named."""
    import numpy as np
    from PIL import Image

    from craftlora.metrics.fd import frechet_distance
    from craftlora.metrics.features import get_extractor

    try:
        ext = get_extractor("inception")
    except Exception as e:  # weights not registered on this machine: say so, use pixels
        ext, why = get_extractor("pixels", size=8), str(e).splitlines()[0]
    else:
        why = ""
    imgs = {k: [np.asarray(Image.open(p).convert("RGB"), dtype=np.float64)
                for p in sorted(d.glob("*.png"))] for k, d in dirs.items()}
    feats = {k: ext.features([v.astype(np.uint8) for v in vs]) for k, vs in imgs.items()}

    def pair_diff(other: str) -> float:  # mean |Δ| over image pairs in plan order, 0–255
        return float(np.mean([np.abs(x - y).mean()
                              for x, y in zip(imgs["plain"], imgs[other], strict=True)]))

    return {**ext.describe(), "inception_unavailable": why or None,
            "fd_craftlora_vs_plain": frechet_distance(feats["plain"], feats["craftlora"]),
            "fd_seed_spread": frechet_distance(feats["plain"], feats["spread"]),
            "mean_abs_pixel_diff_craftlora_vs_plain": pair_diff("craftlora"),
            "mean_abs_pixel_diff_seed_spread": pair_diff("spread"),
            "images_per_set": len(feats["plain"])}


def measure_train(family: str, folder: Path, a: argparse.Namespace, precision: str) -> dict:
    from bench.train import build_workspace, run_arm, steady_cpu_speedup, write_config

    work = WORK / f"train-{family}-{precision}"
    ws = build_workspace(WORK, a.train_images, a.size)
    ns = SimpleNamespace(steps=a.train_steps, batch=a.batch, rank=a.rank, lr=1e-4)
    extra = {"mixed_precision": DTYPES[precision],
             "gradient_checkpointing": a.gradient_checkpointing}
    config = write_config(work / "craftlora" / "train.toml", str(folder), ws, a.size, ns,
                          extra=extra)
    runs = [{arm: run_arm(arm, config, a.threads) for arm in ("diffusers_recipe", "craftlora")}
            for _ in range(a.pairs)]
    arms = runs[0]
    parts = run_child(["--arm", "components", "--model-dir", str(folder), "--size", str(a.size),
                       "--batch", str(a.batch), "--rank", str(a.rank), "--rounds",
                       str(a.rounds), "--precision", precision, "--threads", str(a.threads)])
    pairs = [r["craftlora"]["steps_per_s"] / r["diffusers_recipe"]["steps_per_s"] for r in runs]
    return {"arms": arms, "components": parts, "steps": a.train_steps, "batch": a.batch,
            "rank": a.rank, **_pairs("speedup_loop", pairs),
            "speedup_steady_cpu": [steady_cpu_speedup(r) for r in runs]}


def _pairs(name: str, ratios: list[float]) -> dict:
    """The median ratio over arm pairs run back to back, and every pair's (this CPU's speed
    drifts by up to a third between identical runs minutes apart)."""
    return {name: round(statistics.median(ratios), 3),
            f"{name}_per_pair": [round(x, 3) for x in ratios]}


def measure_generate(family: str, folder: Path, a: argparse.Namespace, precision: str) -> dict:
    common = ["--model-dir", str(folder), "--size", str(a.size), "--precision", precision,
              "--device", a.device, "--gen-images", str(a.gen_images), "--gen-batch",
              str(a.gen_batch), "--gen-steps", str(a.gen_steps), "--threads", str(a.threads)]
    dirs: dict[str, Path] = {}
    runs: list[dict] = []
    for i in range(a.pairs):
        runs.append({})
        for arm in ("plain", "craftlora", "spread") if i == 0 else ("plain", "craftlora"):
            d = WORK / f"gen-{family}-{precision}-{arm}"
            runs[i][arm] = run_child(["--arm", arm, "--images-dir", str(d), "--levers",
                                      ",".join(ARM_LEVERS), *common])
            dirs[arm] = d / "images"
    levers = run_child(["--arm", "levers", "--rounds", str(a.rounds), *common])
    arms = runs[0]

    def ratios(key: str, invert: bool = False) -> list[float]:
        pairs = [(r["craftlora"][key], r["plain"][key]) for r in runs]
        return [b / c if invert else c / b for c, b in pairs]

    return {"arms": {"diffusers_loop": arms["plain"], "craftlora": arms["craftlora"],
                     "diffusers_loop_other_seeds": arms["spread"]},
            **_pairs("speedup_end_to_end", ratios("images_per_s")),
            **_pairs("speedup_loop", ratios("loop_images_per_s")),
            **_pairs("speedup_cpu", ratios("cpu_s", invert=True)),
            "quality": image_set_fd(dirs), "levers_unet_forward": levers,
            "images": a.gen_images, "batch": a.gen_batch, "steps": a.gen_steps,
            "sampler": "DPM++ 2M Karras", "cfg": 7.0}


def measure_family(family: str, a: argparse.Namespace) -> dict:
    counts = parameter_counts(family)
    gib = sum(counts.values()) * 4 / 2**30
    need = 1.5 * gib + 2.0  # fp32 weights, one copy in the arm, activations and the runtime
    row: dict = {"parameters": counts, "fp32_weights_gib": round(gib, 2),
                 "native_px": FAMILIES[family][1]}
    avail = mem_available_gib()
    if a.device == "cpu" and need + a.reserve_gib > avail:
        row["skipped"] = (f"needs about {need:.1f} GiB per arm (fp32 weights {gib:.1f} GiB) "
                          f"and {a.reserve_gib:.0f} GiB must stay free for the machine's other "
                          f"work; {avail:.1f} GiB available")
        return row
    t0 = time.time()
    folder = build_model(family, WORK / family)
    row["build_s"] = round(time.time() - t0, 1)
    for precision in a.precisions:
        res: dict = {}
        if family == "sdxl":
            res["train"] = {"skipped": "bench.train's diffusers-recipe arm is the SD 1.x/2.x "
                                       "script; the SDXL sibling is not written out yet"}
        else:
            res["train"] = measure_train(family, folder, a, precision)
        if family == "sdxl":
            res["generate"] = {"skipped": "the plain loop uses StableDiffusionPipeline"}
        else:
            res["generate"] = measure_generate(family, folder, a, precision)
        row[precision] = res
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default="sd15,sd21,sdxl")
    ap.add_argument("--size", type=int, default=128, help="px; 0 = the family's native size")
    ap.add_argument("--train-steps", type=int, default=6)
    ap.add_argument("--train-images", type=int, default=12)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--gen-images", type=int, default=8)
    ap.add_argument("--gen-batch", type=int, default=2)
    ap.add_argument("--gen-steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="lever timing rounds")
    ap.add_argument("--pairs", type=int, default=1,
                    help="craftlora and baseline arms run back to back this many times; the "
                         "speedups are the median over pairs")
    ap.add_argument("--precision", default="fp32", help="comma list of fp32, fp16, bf16")
    ap.add_argument("--gpu", action="store_true", help="cuda, native sizes, fp16 and bf16")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--reserve-gib", type=float, default=6.0)
    ap.add_argument("--arm", choices=["plain", "spread", "craftlora", "levers", "components"],
                    help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--images-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--levers", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.levers = [x for x in a.levers.split(",") if x]
    a.precisions = ["fp16", "bf16"] if a.gpu else a.precision.split(",")
    if a.gpu:
        a.device = "cuda"

    import torch

    torch.set_num_threads(a.threads)
    if a.arm:
        a.precision = a.precisions[0]
        fn = {"levers": arm_levers, "components": arm_components}.get(a.arm, arm_generate)
        print(json.dumps(fn(a)))
        return

    WORK.mkdir(parents=True, exist_ok=True)
    result: dict = {"benchmark": "real_scale", "device": a.device, "threads": a.threads,
                    "craftlora_arm_levers": ARM_LEVERS, "families": {},
                    "host": {"cpus": os.cpu_count(), "torch": torch.__version__,
                             "load_before": os.getloadavg()}}
    for family in a.families.split(","):
        if a.gpu or a.size == 0:
            a.size = FAMILIES[family][1]
        result["families"][family] = {"size": a.size, **measure_family(family, a)}
        print(json.dumps({family: result["families"][family]}), file=sys.stderr, flush=True)
    result["host"]["load_after"] = os.getloadavg()
    OUT.mkdir(exist_ok=True)
    (OUT / "real_scale.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
