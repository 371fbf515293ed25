"""Prompt encoding for SD 1.x/2.x and SDXL, the way the diffusers pipelines do it.

``clip_skip`` follows diffusers: 0 = the last layer; A1111's "Clip skip 2" is ``clip_skip=1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from craftlora.models.loader import Components


def _final_norm(encoder) -> torch.nn.Module:
    tm = getattr(encoder, "text_model", encoder)
    return tm.final_layer_norm


def tokenize(tokenizer, captions: Sequence[str], device: torch.device) -> torch.Tensor:
    return tokenizer(
        list(captions), padding="max_length", max_length=tokenizer.model_max_length,
        truncation=True, return_tensors="pt",
    ).input_ids.to(device)


def encode_prompts(
    comp: Components, captions: Sequence[str], *, clip_skip: int = 0,
    device: torch.device | None = None,
) -> dict[str, torch.Tensor]:
    """``{"hidden": [B, L, D]}`` (SD) or ``{"hidden", "pooled"}`` (SDXL). Gradients flow when
    the encoder has trainable parameters."""
    device = device or comp.text_encoder.device
    if not comp.is_sdxl:
        enc = comp.text_encoder
        out = enc(tokenize(comp.tokenizer, captions, device), output_hidden_states=True)
        if clip_skip:  # noqa: SIM108
            hidden = _final_norm(enc)(out.hidden_states[-(clip_skip + 1)])
        else:
            hidden = out[0]
        return {"hidden": hidden}
    hiddens, pooled = [], None
    for tok, enc in ((comp.tokenizer, comp.text_encoder), (comp.tokenizer_2, comp.text_encoder_2)):
        out = enc(tokenize(tok, captions, device), output_hidden_states=True)
        pooled = out[0]  # text_embeds of CLIPTextModelWithProjection (the second encoder)
        hiddens.append(out.hidden_states[-(clip_skip + 2)])
    return {"hidden": torch.cat(hiddens, dim=-1), "pooled": pooled}


def sdxl_time_ids(resolution: int, batch: int, device: torch.device,
                  dtype: torch.dtype) -> torch.Tensor:
    """(original size, crop top-left, target size) for square centre-cropped training images."""
    ids = torch.tensor([resolution, resolution, 0, 0, resolution, resolution], dtype=dtype)
    return ids.to(device).expand(batch, 6)
