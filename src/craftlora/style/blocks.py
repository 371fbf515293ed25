"""Style-block discovery: which transformer blocks of a UNet see two images differently.

Both images are DDIM-inverted under the same prompt; at every inversion step the output of each
self-attention layer (``attn1``) is captured for both, and the per-token cosine similarity of
the two is averaged per transformer block (``down_blocks.1.attentions.0`` …). Steps are grouped
into segments; a block whose features stay similar carries content, a dissimilar one style.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

SDXL_STYLE_BLOCKS = ("down_blocks.1.attentions.1", "down_blocks.2.attentions.0",
                     "up_blocks.0.attentions.1", "up_blocks.0.attentions.2")
_BLOCK = re.compile(r"^((?:down_blocks|up_blocks)\.\d+\.attentions\.\d+"
                    r"|mid_block\.attentions\.\d+)")


def transformer_blocks(unet: torch.nn.Module) -> list[str]:
    """Names of the UNet's transformer blocks (``*.attentions.N``), in module order."""
    return [n for n, _ in unet.named_modules() if _BLOCK.fullmatch(n)]


def block_of(module_name: str) -> str | None:
    m = _BLOCK.match(module_name)
    return m.group(1) if m else None


@contextmanager
def capture_self_attention(unet: torch.nn.Module):
    """Collect every ``attn1`` output, keyed by its transformer block, while active."""
    store: dict[str, list[torch.Tensor]] = defaultdict(list)
    hooks = []
    for name, mod in unet.named_modules():
        if name.endswith(".attn1") and (blk := block_of(name)):
            hooks.append(mod.register_forward_hook(
                lambda _m, _i, out, b=blk: store[b].append(out.detach().float())))
    try:
        yield store
    finally:
        for h in hooks:
            h.remove()


@torch.no_grad()
def ddim_invert(unet, scheduler_config: dict, latents: torch.Tensor, cond: torch.Tensor,
                steps: int) -> list[torch.Tensor]:
    """Deterministic DDIM inversion (η = 0), clean latents → noise; returns every z_t visited."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler.from_config(scheduler_config)
    sched.set_timesteps(steps)
    ts = sched.timesteps.flip(0)
    ac = sched.alphas_cumprod
    z, prev, path = latents, None, [latents]
    for t in ts:
        eps = unet(z, t, encoder_hidden_states=cond).sample
        a_prev = ac[prev] if prev is not None else sched.final_alpha_cumprod
        a_t = ac[t]
        x0 = (z - (1 - a_prev).sqrt() * eps) / a_prev.sqrt()
        z = a_t.sqrt() * x0 + (1 - a_t).sqrt() * eps
        prev = t
        path.append(z)
    return path


def _similarities(store_a, store_b) -> dict[str, np.ndarray]:
    """Per block: the per-step mean token cosine similarity (averaged over its layers)."""
    out = {}
    for blk, feats_a in store_a.items():
        feats_b = store_b[blk]
        sims = [torch.nn.functional.cosine_similarity(a, b, dim=-1).mean().item()
                for a, b in zip(feats_a, feats_b, strict=True)]
        out[blk] = np.asarray(sims, dtype=np.float64)
    return out


@torch.no_grad()
def block_similarity(unet, scheduler_config: dict, lat_a: torch.Tensor, lat_b: torch.Tensor,
                     cond: torch.Tensor, *, steps: int = 10, segments: int = 5
                     ) -> dict[str, dict[str, Any]]:
    """Invert both latents and compare each block's self-attention outputs over time.

    Returns ``{block: {"mean": s, "segments": [s_1 … s_k]}}``, s a cosine similarity.
    """
    with capture_self_attention(unet) as store_a:
        ddim_invert(unet, scheduler_config, lat_a, cond, steps)
    with capture_self_attention(unet) as store_b:
        ddim_invert(unet, scheduler_config, lat_b, cond, steps)
    result = {}
    for blk, sims in _similarities(store_a, store_b).items():
        # a block with L transformer layers recorded L values per step, in order
        per_step = sims.reshape(steps, -1).mean(1)
        segs = [float(s.mean()) for s in np.array_split(per_step, min(segments, steps))]
        result[blk] = {"mean": float(per_step.mean()), "segments": segs}
    return result


def rank_blocks(sims: dict[str, dict[str, Any]], k: int) -> list[str]:
    """The k least-similar blocks (style carriers), most dissimilar first."""
    order = sorted(sims, key=lambda b: (sims[b]["mean"], b))
    return order[:k]


def write_chart(sims: dict[str, dict[str, Any]], chosen: Sequence[str], path: Path,
                title: str) -> Path:
    """A bar chart of each block's mean similarity, chosen blocks highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(sims)
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(names) + 2), 3.2))
    ax.bar(range(len(names)), [sims[n]["mean"] for n in names],
           color=["tab:red" if n in chosen else "tab:gray" for n in names])
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("self-attention cosine similarity")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
