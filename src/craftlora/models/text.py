"""Prompt encoding for SD 1.x/2.x and SDXL, the way the diffusers pipelines do it.

``clip_skip`` follows diffusers: 0 = the last layer; A1111's "Clip skip 2" is ``clip_skip=1``.

``encode_text`` encodes from a pipeline, for prompt and negative prompt alike, instead of
passing ``clip_skip`` to the pipeline: diffusers 0.42's ``encode_prompt`` reaches
``text_encoder.text_model.final_layer_norm``, which transformers 5 no longer has, and diffusers
applies ``clip_skip`` to the prompt but not to the negative prompt (A1111 does both, so do we).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from craftlora.models.loader import Components
from craftlora.models.prompt_weights import encode_weighted, encoder_hidden, match_lengths


def tokenize(tokenizer, captions: Sequence[str], device: torch.device) -> torch.Tensor:
    return tokenizer(
        list(captions), padding="max_length", max_length=tokenizer.model_max_length,
        truncation=True, return_tensors="pt",
    ).input_ids.to(device)


def encode_prompts(
    comp: Components, captions: Sequence[str], *, clip_skip: int = 0,
    device: torch.device | None = None, weighted: bool = False,
) -> dict[str, torch.Tensor]:
    """``{"hidden": [B, L, D]}`` (SD) or ``{"hidden", "pooled"}`` (SDXL). Gradients flow when
    the encoder has trainable parameters. ``weighted``: A1111 syntax (emphasis, 75-token
    chunks, BREAK; ``models.prompt_weights``); otherwise the text is read literally and cut at
    the tokenizer's length."""
    device = device or comp.text_encoder.device
    if weighted:
        return encode_weighted(comp, captions, clip_skip=clip_skip, device=device)
    if not comp.is_sdxl:
        ids = tokenize(comp.tokenizer, captions, device)
        return {"hidden": encoder_hidden(comp.text_encoder, ids, clip_skip, sdxl=False)[0]}
    hiddens, pooled = [], None
    for tok, enc in ((comp.tokenizer, comp.text_encoder), (comp.tokenizer_2, comp.text_encoder_2)):
        hidden, pooled = encoder_hidden(enc, tokenize(tok, captions, device), clip_skip, sdxl=True)
        hiddens.append(hidden)  # pooled: text_embeds of the second encoder (with projection)
    return {"hidden": torch.cat(hiddens, dim=-1), "pooled": pooled}


def diffusers_clip_skip(a1111_clip_skip: int) -> int | None:
    """A1111 "Clip skip N" → diffusers ``clip_skip`` (N - 1; ``None`` for N = 1)."""
    if isinstance(a1111_clip_skip, bool) or not isinstance(a1111_clip_skip, int):
        raise ValueError(f"clip skip must be an integer >= 1, not {a1111_clip_skip!r}")
    if a1111_clip_skip < 1:
        raise ValueError(
            f"clip skip {a1111_clip_skip} is invalid: A1111 counts from 1 (1 = last layer)"
        )
    return None if a1111_clip_skip == 1 else a1111_clip_skip - 1


@torch.no_grad()
def encode_text(pipe: Any, texts: Sequence[str], clip_skip: int | None, *,
                weighted: bool = True) -> torch.Tensor:
    """Embeddings (N, L, D) of ``texts`` from an SD 1.x / 2.x pipeline's text encoder;
    ``clip_skip`` in diffusers' count (None = last); A1111 syntax unless ``weighted=False``
    (L grows by 77 per chunk: ``prompt_embeds`` pairs a prompt with its negative)."""
    te = pipe.text_encoder
    if getattr(pipe, "text_encoder_2", None) is not None:
        raise TypeError("an SDXL pipeline has two encoders and a pooled embedding: "
                        "use encode_sdxl_text")
    _check_clip_skip(te, clip_skip)
    comp = Components(unet=pipe.unet, vae=pipe.vae, text_encoder=te, tokenizer=pipe.tokenizer,
                      noise_scheduler=pipe.scheduler)
    hidden = encode_prompts(comp, list(texts), clip_skip=clip_skip or 0,
                            weighted=weighted)["hidden"]
    return hidden.to(dtype=te.dtype)


def _check_clip_skip(encoder: Any, clip_skip: int | None) -> None:
    layers = int(encoder.config.num_hidden_layers)
    if clip_skip is not None and clip_skip >= layers:
        raise ValueError(
            f"clip skip {clip_skip + 1} (A1111) is deeper than the text encoder's {layers} layers"
        )


@torch.no_grad()
def encode_sdxl_text(pipe: Any, texts: Sequence[str], clip_skip: int | None, *,
                     weighted: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hidden (N, L, D1 + D2), pooled (N, P))`` of ``texts`` from an SDXL pipeline's two
    encoders, as ``StableDiffusionXLPipeline.encode_prompt`` makes them (penultimate layer of
    each, ``clip_skip`` more layers back; pooled = the second encoder's projection)."""
    layers = min(int(te.config.num_hidden_layers) for te in (pipe.text_encoder,
                                                             pipe.text_encoder_2))
    if clip_skip is not None and clip_skip + 1 >= layers:
        raise ValueError(f"clip skip {clip_skip + 1} (A1111) is too deep for SDXL's {layers}-layer "
                         "encoders (SDXL already reads the penultimate layer)")
    comp = Components(unet=pipe.unet, vae=pipe.vae, text_encoder=pipe.text_encoder,
                      tokenizer=pipe.tokenizer, noise_scheduler=pipe.scheduler, kind="sdxl",
                      text_encoder_2=pipe.text_encoder_2, tokenizer_2=pipe.tokenizer_2)
    out = encode_prompts(comp, list(texts), clip_skip=clip_skip or 0, weighted=weighted)
    dtype = pipe.text_encoder_2.dtype
    return out["hidden"].to(dtype=dtype), out["pooled"].to(dtype=dtype)


def prompt_embeds(pipe: Any, texts: Sequence[str], negatives: Sequence[str],
                  clip_skip: int | None, *, weighted: bool = True) -> dict[str, torch.Tensor]:
    """The prompt and negative embedding arguments of an SD or SDXL pipeline call (SDXL with
    the pooled ones; the pipeline adds the size/crop ids itself), in A1111 syntax; a long prompt
    and a short negative are brought to one length (``match_lengths``). ``weighted=False``
    reads the texts as training captions: literal, cut at one chunk (as the trainers do)."""
    if getattr(pipe, "text_encoder_2", None) is None:
        pos, neg = match_lengths(encode_text(pipe, texts, clip_skip, weighted=weighted),
                                 encode_text(pipe, negatives, clip_skip, weighted=weighted))
        return {"prompt_embeds": pos, "negative_prompt_embeds": neg}
    hidden, pooled = encode_sdxl_text(pipe, texts, clip_skip, weighted=weighted)
    neg_hidden, neg_pooled = encode_sdxl_text(pipe, negatives, clip_skip, weighted=weighted)
    hidden, neg_hidden = match_lengths(hidden, neg_hidden)
    return {"prompt_embeds": hidden, "pooled_prompt_embeds": pooled,
            "negative_prompt_embeds": neg_hidden, "negative_pooled_prompt_embeds": neg_pooled}
