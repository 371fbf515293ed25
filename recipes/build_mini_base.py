"""Build the bundled mini base model from scratch (the recipe behind ``craftlora/mini/base``).

Stages, each skipped when its output exists, so a killed build resumes:

1. render the generic world (``craftlora.mini.generic``) and catalog it in a workspace;
2. build a CLIP-style BPE tokenizer on its captions plus everyday words;
3. train the ``AutoencoderKL`` (64×64 → 4×16×16) briefly on those images (L1 + MSE + tiny KL);
   its ``scaling_factor`` is set to 1 / std of the latents, as SD does;
4. train the UNet and the text encoder from random init with ``craftlora train`` in ``full``
   mode (ε-prediction, min-SNR-γ 5), resumable with ``--resume latest``;
5. copy the final model into ``--out`` (safetensors) with its loss curve and a sample grid.

``python recipes/build_mini_base.py --work DIR --out src/craftlora/mini/base``
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import time
from pathlib import Path

import torch

from craftlora.models.tiny import (
    BASE_CORPUS,
    TinySpec,
    build_scheduler,
    build_text_encoder,
    build_unet,
    build_vae,
)

SPEC = TinySpec(
    image_size=64, vae_channels=(16, 32, 64), vae_layers=1, latent_channels=4,
    unet_channels=(32, 64, 128), unet_layers=1, unet_attention=(False, True, True),
    attention_head_dim=4, text_width=64, text_layers=2, text_heads=4, text_ff=128,
    max_length=24, vocab_size=1200,
)
PROMPTS = [
    "a red ball on a plain green floor under bright light",
    "a blue cube on a checked yellow floor under warm light",
    "a yellow star on a striped purple floor under cool light",
    "a green pyramid on a dotted orange floor under dim light",
    "a pink heart on a plain teal floor under bright light",
    "an orange ring and a blue arrow on a plain grey floor under warm light",
]


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def stage_data(work: Path, n: int, seed: int) -> Path:
    from craftlora.catalog.workspace import Workspace
    from craftlora.config import WorkspaceConfig
    from craftlora.mini.generic import render_generic

    ws_root = work / "ws"
    if (ws_root / "craftlora.toml").is_file():
        return ws_root
    img_dir = ws_root / "images"
    captions = render_generic(img_dir, n=n, seed=seed, size=SPEC.image_size, progress=True)
    tmp = Workspace.create(ws_root, WorkspaceConfig(name="generic-world"))
    with tmp.catalog.transaction(), open(captions, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            p = img_dir / row["file"]
            tmp.catalog.add_image(
                sha256=hashlib.sha256(p.read_bytes()).hexdigest(),
                path=f"images/{row['file']}", width=SPEC.image_size,
                height=SPEC.image_size, split="train", caption=row["caption"],
                source="generic-world")
    tmp.close()
    return ws_root


def _captions(ws_root: Path) -> list[str]:
    with open(ws_root / "images" / "captions.csv", newline="", encoding="utf-8") as f:
        return [r["caption"] for r in csv.DictReader(f)]


def stage_vae(work: Path, ws_root: Path, steps: int, seed: int) -> Path:
    """Train the VAE; checkpoints every 100 steps to ``vae-ckpt.pt`` (weights_only loadable)."""
    import numpy as np
    from PIL import Image

    out = work / "vae"
    if (out / "config.json").is_file():
        return out
    torch.manual_seed(seed)
    vae = build_vae(SPEC)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    files = sorted((ws_root / "images").glob("*.png"))
    imgs = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), np.float32))
                        for f in files]).permute(0, 3, 1, 2) / 127.5 - 1
    start, ck = 0, work / "vae-ckpt.pt"
    if ck.is_file():
        st = torch.load(ck, weights_only=True)
        vae.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        start = int(st["step"])
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    for step in range(start, steps):
        g.manual_seed(seed * 100003 + step)
        x = imgs[torch.randint(0, len(imgs), (16,), generator=g)]
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample
        loss = (rec - x).abs().mean() + ((rec - x) ** 2).mean() + 1e-6 * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 25 == 0:
            _log(f"vae step {step + 1}/{steps} loss {loss.item():.4f} "
                 f"({(time.time() - t0) / (step + 1 - start):.2f} s/step)")
        if (step + 1) % 100 == 0 or step + 1 == steps:
            torch.save({"model": vae.state_dict(), "opt": opt.state_dict(), "step": step + 1},
                       ck.with_suffix(".tmp"))
            ck.with_suffix(".tmp").replace(ck)
    with torch.no_grad():
        z = torch.cat([vae.encode(imgs[i:i + 64]).latent_dist.mean
                       for i in range(0, min(len(imgs), 1024), 64)])
        rec = vae.decode(z[:64]).sample
        err = (rec - imgs[:64]).abs().mean().item()
    vae.register_to_config(scaling_factor=float(1.0 / z.std()))
    vae.save_pretrained(out, safe_serialization=True)
    (out / "vae_train.json").write_text(json.dumps(
        {"steps": steps, "batch": 16, "lr": 1e-3, "recon_l1": err,
         "scaling_factor": float(1.0 / z.std()), "wall_s": time.time() - t0}, indent=2))
    return out


def stage_init(work: Path, ws_root: Path, vae_dir: Path, seed: int) -> Path:
    """The starting pipeline: trained VAE, fresh UNet and text encoder, the tokenizer."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline

    from craftlora.models.tokenizer import build_clip_tokenizer, load_clip_tokenizer

    out = work / "init"
    if (out / "model_index.json").is_file():
        return out
    tok_dir = build_clip_tokenizer([BASE_CORPUS, *_captions(ws_root), *PROMPTS],
                                   work / "tokenizer", vocab_size=SPEC.vocab_size,
                                   max_length=SPEC.max_length)
    tok = load_clip_tokenizer(tok_dir)
    torch.manual_seed(seed)
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(vae_dir), text_encoder=build_text_encoder(SPEC, tok),
        tokenizer=tok, unet=build_unet(SPEC), scheduler=build_scheduler(SPEC),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out, safe_serialization=True)
    return out


def train_config(work: Path, ws_root: Path, init: Path, steps: int, seed: int) -> Path:
    import tomli_w

    cfg = {
        "name": "mini-base", "mode": "full", "model": str(init.resolve()),
        "output_dir": str(work.resolve() / "unet-run"), "seed": seed, "max_steps": steps,
        "batch_size": 32, "train_text_encoder": True, "checkpoint_every": 100, "keep_last": 2,
        "log_every": 10,
        "data": {"workspace": str(ws_root.resolve()), "resolution": SPEC.image_size,
                 "caption_dropout": 0.1},
        "loss": {"min_snr_gamma": 5.0},
        "optim": {"lr": 5e-4, "scheduler": "cosine", "warmup_steps": 100,
                  "weight_decay": 0.0, "max_grad_norm": 1.0},
        "validation": {"prompts": PROMPTS[:4], "every": 500, "steps": 20, "guidance": 4.0},
    }
    path = work.resolve() / "train.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


def stage_unet(config: Path) -> dict:
    from craftlora.train.checkpoint import complete_checkpoints
    from craftlora.train.config import load_train_config
    from craftlora.train.trainer import train

    cfg = load_train_config(config)
    resume = "latest" if complete_checkpoints(Path(cfg.output_dir) / "checkpoints") else None
    return train(cfg, resume=resume)


def finish(work: Path, out: Path) -> None:
    """Copy the trained model to ``out`` with a loss curve and a sample grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from craftlora.models.loader import load_components

    model = work / "unet-run" / "model"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(model, out, ignore=shutil.ignore_patterns("craftlora_train.json"))
    shutil.copy2(work / "vae" / "vae_train.json", out / "vae_train.json")
    rows = [json.loads(x) for x in (work / "unet-run" / "log.jsonl").read_text().splitlines()]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (min-SNR-weighted ε MSE)")
    fig.tight_layout()
    fig.savefig(out / "loss_curve.png", dpi=100)
    plt.close(fig)
    comp = load_components(out)
    from diffusers import DPMSolverMultistepScheduler
    from PIL import Image

    pipe = comp.pipeline(DPMSolverMultistepScheduler.from_config(
        comp.noise_scheduler.config, use_karras_sigmas=True))
    ims = []
    for i, p in enumerate(PROMPTS):
        g = torch.Generator().manual_seed(i)
        ims += pipe(p, num_inference_steps=20, guidance_scale=4.0, height=64, width=64,
                    num_images_per_prompt=4, generator=g).images
    grid = Image.new("RGB", (64 * 4, 64 * len(PROMPTS)))
    for i, im in enumerate(ims):
        grid.paste(im, ((i % 4) * 64, (i // 4) * 64))
    grid.save(out / "samples.png")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--images", type=int, default=6000)
    ap.add_argument("--vae-steps", type=int, default=1500)
    ap.add_argument("--unet-steps", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    a.work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    ws_root = stage_data(a.work, a.images, a.seed)
    _log(f"data ready ({time.time() - t0:.0f} s)")
    vae = stage_vae(a.work, ws_root, a.vae_steps, a.seed)
    _log(f"vae ready ({time.time() - t0:.0f} s)")
    init = stage_init(a.work, ws_root, vae, a.seed)
    res = stage_unet(train_config(a.work, ws_root, init, a.unet_steps, a.seed))
    _log(f"unet trained: {res['step']} steps, {res['timings']['train_s']:.0f} s")
    finish(a.work, a.out)
    _log(f"done in {time.time() - t0:.0f} s → {a.out}")


if __name__ == "__main__":
    main()
