"""The stage-2 contrastive self-distillation loss and the prompt routing it relies on.

With ε_des = ε_{θ0,θa}(z, c_des) − ε_{θ0}(z, c_des) and ε_emb the same difference under the
style prompt (routed to the style blocks), ε*_emb = ε_emb − ε_des is the style direction. For a
reference pair (r) and an expansion pair (g):

    L = −log( e^{s(r*_emb, g*_emb)/τ} / (e^{s(r*_emb, g_des)/τ} + e^{s(r_des, g*_emb)/τ}) )

with s the cosine similarity of the flattened tensors: the two style directions are pulled
together and pushed away from the other pair's content direction.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager

import torch
from torch.nn.functional import cosine_similarity


def _s(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


def contrastive_loss(ref_emb_star: torch.Tensor, ref_des: torch.Tensor,
                     gen_emb_star: torch.Tensor, gen_des: torch.Tensor,
                     tau: float = 1.0) -> torch.Tensor:
    """Batch mean of the loss above; every tensor is [B, …] (one row per pair of pairs)."""
    pos = _s(ref_emb_star, gen_emb_star) / tau
    neg = torch.stack([_s(ref_emb_star, gen_des) / tau, _s(ref_des, gen_emb_star) / tau])
    return (torch.logsumexp(neg, dim=0) - pos).mean()


@contextmanager
def route_prompt(unet: torch.nn.Module, blocks: Iterable[str], hidden: torch.Tensor):
    """While active, the transformer blocks in ``blocks`` receive ``hidden`` as their
    cross-attention context; every other block keeps the prompt the UNet was called with."""
    wanted = set(blocks)
    hooks = []

    def swap(_m, args, kwargs):
        kwargs = dict(kwargs)
        kwargs["encoder_hidden_states"] = hidden
        return args, kwargs

    for name, mod in unet.named_modules():
        if name in wanted:
            hooks.append(mod.register_forward_pre_hook(swap, with_kwargs=True))
    if len(hooks) != len(wanted):
        missing = wanted - {n for n, _ in unet.named_modules()}
        for h in hooks:
            h.remove()
        raise ValueError(f"style blocks not in this UNet: {sorted(missing)}")
    try:
        yield
    finally:
        for h in hooks:
            h.remove()
