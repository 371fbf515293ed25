"""CLIP prompt embeddings with A1111's clip skip, for prompt and negative prompt alike.

We encode prompts here instead of passing ``clip_skip`` to the pipeline for two reasons:

- diffusers 0.42's ``encode_prompt`` reaches ``text_encoder.text_model.final_layer_norm``,
  which transformers 5 no longer has (``CLIPTextModel`` holds ``final_layer_norm`` itself), so
  any ``clip_skip`` crashes there;
- diffusers applies ``clip_skip`` to the prompt but not to the negative prompt; A1111 applies
  it to both, and so do we.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


@torch.no_grad()
def encode_text(pipe: Any, texts: Sequence[str], clip_skip: int | None) -> torch.Tensor:
    """Embeddings (N, L, D) of ``texts``; ``clip_skip`` in diffusers' count (None = last).

    SD 1.x / 2.x pipelines (one text encoder); the encoding itself is ``craftlora.models.text``.
    """
    from craftlora.models.loader import Components
    from craftlora.models.text import encode_prompts

    te = pipe.text_encoder
    if getattr(pipe, "text_encoder_2", None) is not None:
        raise NotImplementedError("generation with SDXL pipelines (pooled embeddings) is not wired")
    layers = int(te.config.num_hidden_layers)
    if clip_skip is not None and clip_skip >= layers:
        raise ValueError(
            f"clip skip {clip_skip + 1} (A1111) is deeper than the text encoder's {layers} layers"
        )
    comp = Components(
        unet=pipe.unet,
        vae=pipe.vae,
        text_encoder=te,
        tokenizer=pipe.tokenizer,
        noise_scheduler=pipe.scheduler,
    )
    hidden = encode_prompts(comp, list(texts), clip_skip=clip_skip or 0)["hidden"]
    return hidden.to(dtype=te.dtype)
