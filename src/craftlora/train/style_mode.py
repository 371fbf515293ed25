"""Two-stage style-LoRA training on one (embroidery, design) pair, resumable and seeded.

Stage 1 (block modulation), every step with one shared noise and timestep:
(1) the whole LoRA (θ_a) learns the design under the content prompt; (2) only the style blocks'
LoRA (θ_e) learns the embroidery while the style prompt is routed to the style blocks and the
content prompt to the rest. Stage 2 adds (3) the contrastive term on θ_e (``style_loss.py``),
with the expansion designs as the "generated" side. Baselines are settings of the same loop:
``design_update=False`` with every block as a style block is a whole-UNet LoRA on the
embroidery (DreamBooth-LoRA-like); two blocks without the design update is B-LoRA-like.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from craftlora.models.lora import (
    adapter_config,
    add_lora,
    lora_state_dict,
    save_diffusers_lora,
    save_safetensors_atomic,
)
from craftlora.models.text import encode_prompts
from craftlora.train.style_loss import contrastive_loss, route_prompt

STYLE_TOKEN = "stitchwork"
META_NAME = "style_lora.json"


@dataclass
class StyleSettings:
    style_blocks: list[str]
    rank: int = 8
    lr: float = 1e-4
    stage1_steps: int = 400
    stage2_steps: int = 200
    contrastive_weight: float = 1e-4
    tau: float = 1.0
    reference_weight: float = 1.0
    expansion_weight: float = 0.1
    design_update: bool = True
    seed: int = 42
    save_every: int = 50
    method: str = "contrastive"


def style_prompt(caption: str) -> str:
    return f"{caption} in {STYLE_TOKEN} style"


def image_latents(comp, images: list[np.ndarray]) -> torch.Tensor:
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        return comp.vae.encode(x).latent_dist.mean * comp.vae.config.scaling_factor


def _noise(sched, z: torch.Tensor, step: int, seed: int):
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    t = torch.randint(0, sched.config.num_train_timesteps, (1,), generator=g)
    eps = torch.randn(z[:1].shape, generator=g).expand_as(z).contiguous()
    return sched.add_noise(z, eps, t.expand(z.shape[0])), eps, t


def _opt(params, lr):
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)


class _Pair:
    """Prompts and latents of the reference pair (row 0) and the expansion designs (rows 1…)."""

    def __init__(self, comp, emb, design, caption, expansions):
        with torch.no_grad():
            caps = [caption] + [c for _, c in expansions]
            self.c_des = encode_prompts(comp, caps)["hidden"]
            self.c_emb = encode_prompts(comp, [style_prompt(c) for c in caps])["hidden"]
        self.z_emb = image_latents(comp, [emb])
        self.z_des = image_latents(comp, [design] + [d for d, _ in expansions])


def _mse(pred, target, w):
    per = ((pred - target) ** 2).flatten(1).mean(1)
    return (per * w).sum() / w.sum().clamp_min(1e-8)


def _eps(unet, z, t, c):
    return unet(z, t.expand(z.shape[0]), encoder_hidden_states=c).sample


def _contrastive(unet, blocks, p: _Pair, z_t, t, s: StyleSettings) -> torch.Tensor:
    """ε*_emb and ε_des of the reference (row 0) and expansion rows, then the loss."""
    with torch.no_grad():
        unet.disable_adapters()
        base_des = _eps(unet, z_t, t, p.c_des)
        with route_prompt(unet, blocks, p.c_emb):
            base_emb = _eps(unet, z_t, t, p.c_des)
        unet.enable_adapters()
    e_des = _eps(unet, z_t, t, p.c_des) - base_des
    with route_prompt(unet, blocks, p.c_emb):
        e_emb = _eps(unet, z_t, t, p.c_des) - base_emb
    star = e_emb - e_des
    n = z_t.shape[0] - 1
    return contrastive_loss(star[:1].expand(n, *star.shape[1:]), e_des[:1].expand_as(e_des[1:]),
                            star[1:], e_des[1:], tau=s.tau)


def _step(unet, sched, p: _Pair, step: int, s: StyleSettings, opts, style_params) -> float:
    opt_a, opt_e = opts
    z_t, eps, t = _noise(sched, p.z_des, step, s.seed)
    loss_a = torch.tensor(0.0)
    if s.design_update:
        w = torch.full((p.z_des.shape[0],), s.expansion_weight)
        w[0] = s.reference_weight
        loss_a = _mse(_eps(unet, z_t, t, p.c_des), eps, w)
        loss_a.backward()
        opt_a.step()
        opt_a.zero_grad(set_to_none=True)
    ze_t = sched.add_noise(p.z_emb, eps[:1], t)
    with route_prompt(unet, s.style_blocks, p.c_emb[:1]):
        loss_e = _mse(_eps(unet, ze_t, t, p.c_des[:1]), eps[:1], torch.ones(1))
    loss_e.backward()
    _only(style_params, opt_a)
    opt_e.step()
    opt_e.zero_grad(set_to_none=True)
    if step >= s.stage1_steps and p.z_des.shape[0] > 1 and s.contrastive_weight > 0:
        loss_c = s.contrastive_weight * _contrastive(unet, s.style_blocks, p, z_t, t, s)
        loss_c.backward()
        _only(style_params, opt_a)
        opt_e.step()
        opt_e.zero_grad(set_to_none=True)
    return float(loss_a.detach() + loss_e.detach())


def _only(style_params, opt_a) -> None:
    """Drop gradients outside θ_e (θ_e updates must not move the other blocks)."""
    keep = {id(q) for q in style_params}
    for group in opt_a.param_groups:
        for q in group["params"]:
            if id(q) not in keep:
                q.grad = None


def _save_state(out: Path, unet, opts, step: int, losses: list[float]) -> None:
    state = out / "state"
    state.mkdir(parents=True, exist_ok=True)
    save_safetensors_atomic(lora_state_dict(unet), state / "lora.safetensors")
    tmp = state / ".opt.pt.tmp"
    torch.save({"a": opts[0].state_dict(), "e": opts[1].state_dict()}, tmp)
    tmp.replace(state / "opt.pt")
    (state / ".step.tmp").write_text(json.dumps({"step": step, "losses": losses}))
    (state / ".step.tmp").replace(state / "step.json")


def _load_state(out: Path, unet, opts) -> tuple[int, list[float]]:
    from peft.utils import set_peft_model_state_dict

    state = out / "state"
    if not (state / "step.json").exists():
        return 0, []
    info = json.loads((state / "step.json").read_text())
    set_peft_model_state_dict(unet, load_file(str(state / "lora.safetensors")))
    opt = torch.load(state / "opt.pt", weights_only=True)
    opts[0].load_state_dict(opt["a"])
    opts[1].load_state_dict(opt["e"])
    return int(info["step"]), list(info["losses"])


def train_style(comp, emb: np.ndarray, design: np.ndarray, caption: str,
                expansions: list[tuple[np.ndarray, str]], s: StyleSettings, out: Path,
                *, stop_after: int | None = None) -> Path:
    """Train (or resume) a style LoRA in ``out``; return the LoRA file once all steps ran.

    ``stop_after`` ends the run early after that many total steps (tests of resume)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    unet, sched = comp.unet, comp.noise_scheduler
    torch.manual_seed(s.seed)
    add_lora(unet, rank=s.rank, alpha=float(s.rank))
    params = [q for q in unet.parameters() if q.requires_grad]
    style_params = [q for n, q in unet.named_parameters()
                    if q.requires_grad and any(n.startswith(b + ".") for b in s.style_blocks)]
    if not style_params:
        raise ValueError(f"no LoRA parameters inside the style blocks {s.style_blocks}")
    opts = (_opt(params, s.lr), _opt(style_params, s.lr))
    pair = _Pair(comp, emb, design, caption, expansions)
    step, losses = _load_state(out, unet, opts)
    total = s.stage1_steps + s.stage2_steps
    end = min(total, stop_after) if stop_after is not None else total
    unet.train()
    while step < end:
        losses.append(_step(unet, sched, pair, step, s, opts, style_params))
        step += 1
        if step % s.save_every == 0 or step == end:
            _save_state(out, unet, opts, step, losses)
    unet.eval()
    path = save_diffusers_lora(out, {"unet": (lora_state_dict(unet), adapter_config(unet))})
    meta = {**asdict(s), "steps_done": step, "final_loss": float(np.mean(losses[-20:]))
            if losses else None, "source": comp.source}
    (out / META_NAME).write_text(json.dumps(meta, indent=1))
    return path


def _read(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise ValueError(f"{path}: not a readable image ({e.__class__.__name__})") from e


def train_style_mode(cfg, *, resume: str | None = None, components=None) -> dict:
    """``craftlora train`` with ``mode = "style-contrastive"``: settings from the config's
    ``[style]``, ``lora.rank``, ``optim.lr``, ``seed`` and ``checkpoint_every``."""
    from craftlora.models.loader import load_components

    st, out = cfg.style, Path(cfg.output_dir)
    if resume is None and (out / "state" / "step.json").exists():
        raise ValueError(f"{out}: holds a style run already; pass --resume latest to continue")
    t0 = time.time()
    comp = components or load_components(cfg.model, config=cfg.model_config_dir)
    s = StyleSettings(
        style_blocks=list(st.blocks), rank=cfg.lora.rank, lr=cfg.optim.lr,
        stage1_steps=st.stage1_steps, stage2_steps=st.stage2_steps,
        contrastive_weight=st.contrastive_weight, tau=st.tau,
        reference_weight=st.reference_weight, expansion_weight=st.expansion_weight,
        seed=cfg.seed, save_every=cfg.checkpoint_every)
    exp = [(_read(p), c) for p, c in zip(st.expansion_designs, st.expansion_captions,
                                         strict=True)]
    start = json.loads((out / "state" / "step.json").read_text())["step"] \
        if (out / "state" / "step.json").exists() else 0
    path = train_style(comp, _read(st.embroidery), _read(st.design), st.caption, exp, s, out)
    steps = s.stage1_steps + s.stage2_steps
    wall = time.time() - t0
    return {"status": "done", "step": steps, "wall_s": wall,
            "timings": {"steps_per_s": (steps - start) / max(wall, 1e-9)},
            "outputs": {"lora": str(path), "meta": str(out / META_NAME)}}
