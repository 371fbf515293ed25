"""AUTOMATIC1111 prompt syntax: emphasis weights, 75-token chunks and ``BREAK``.

Syntax (A1111's, which ComfyUI shares):

- ``(x)`` multiplies the weight of ``x`` by 1.1, ``((x))`` by 1.1² = 1.21, ``[x]`` divides it
  by 1.1, ``(x:1.5)`` multiplies it by 1.5; brackets nest and their factors multiply;
- ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are the literal characters; a ``)`` or ``]`` with no
  open bracket of its kind is literal text, and a bracket left open applies to the end;
- the word ``BREAK`` (upper case) ends the current chunk.

Encoding: the text's tokens (with their weights) are cut into chunks of ``model_max_length − 2``
tokens (75 for CLIP), starting a new chunk at every ``BREAK``; each chunk is encoded on its own
as ``BOS + tokens + EOS + padding`` (exactly what the tokenizer makes of a short prompt) and the
chunks' hidden states are joined along the sequence. As in A1111, when a chunk fills up and its
last comma is at most 20 tokens from its end, the words after that comma move to the next chunk
(a trailing ``BREAK`` adds no chunk).

Emphasis (A1111's "Original" rule), per chunk and per text encoder: the chunk's output hidden
states ``z`` (after clip skip) are multiplied token by token by the weights (BOS, EOS and padding
weigh 1), then rescaled so that ``z.mean()`` equals the mean before weighting. A1111 takes that
mean over the whole batch of prompts; here it is per prompt, the same at batch size 1.

SDXL: both encoders see the same chunks and their hidden states are concatenated feature-wise;
the pooled embedding is the second encoder's, from the first chunk, unweighted (as A1111).

Prompts of different lengths in one batch (or a prompt and its negative) are brought to a common
length by repeating each context whole (``match_lengths``): cross-attention over a sequence
repeated k times gives exactly the output over the sequence once, so the result equals
encoding each prompt alone (ComfyUI's rule), unlike padding with empty chunks.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch

EMPHASIS = 1.1
COMMA_BACKTRACK = 20  # A1111's default "comma padding backtrack"
_WEIGHT = re.compile(r":\s*([+-]?[.\d]+)\s*\)")
_BREAK = re.compile(r"\s*\bBREAK\b\s*")
_SPECIAL = "\\()[]:"

Segment = list[tuple[str, float]]


def _literal_run(text: str, i: int) -> int:
    """End of the run of ordinary characters starting at ``i``."""
    j = i
    while j < len(text) and text[j] not in _SPECIAL:
        j += 1
    return max(j, i + 1)


def parse_emphasis(text: str) -> list[Segment]:
    """``text`` as BREAK-separated segments of ``(text, weight)`` runs (equal weights merged)."""
    runs: list[list[Any]] = []  # [text, weight]; a BREAK is [None, 1.0]
    rounds: list[int] = []
    squares: list[int] = []

    def scale(start: int, factor: float) -> None:
        for r in runs[start:]:
            r[1] *= factor

    def add(s: str) -> None:
        for k, part in enumerate(_BREAK.split(s)):
            if k:
                runs.append([None, 1.0])
            if part:
                runs.append([part, 1.0])

    i = 0
    while i < len(text):
        c = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if c == "\\" and nxt and nxt in "()[]\\":
            runs.append([nxt, 1.0])
            i += 2
        elif c == "(":
            rounds.append(len(runs))
            i += 1
        elif c == "[":
            squares.append(len(runs))
            i += 1
        elif c == ":" and rounds and (m := _WEIGHT.match(text, i)) and _is_number(m.group(1)):
            scale(rounds.pop(), float(m.group(1)))
            i = m.end()
        elif c == ")" and rounds:
            scale(rounds.pop(), EMPHASIS)
            i += 1
        elif c == "]" and squares:
            scale(squares.pop(), 1 / EMPHASIS)
            i += 1
        else:
            j = _literal_run(text, i)
            add(text[i:j])
            i = j
    for start in rounds:
        scale(start, EMPHASIS)
    for start in squares:
        scale(start, 1 / EMPHASIS)
    segments: list[Segment] = [[]]
    for s, w in runs:
        if s is None:
            segments.append([])
        elif segments[-1] and segments[-1][-1][1] == w:
            segments[-1][-1] = (segments[-1][-1][0] + s, w)
        else:
            segments[-1].append((s, w))
    return segments


def _is_number(s: str) -> bool:
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False


def token_chunks(tokenizer, text: str) -> list[tuple[list[int], list[float]]]:
    """(token ids, weights) per chunk of ``text``, without BOS/EOS; at least one chunk."""
    segments = parse_emphasis(text)
    if len(segments) > 1 and not segments[-1]:
        segments.pop()  # a trailing BREAK opens no chunk
    comma = tokenizer.convert_tokens_to_ids(",</w>")
    comma = None if comma == tokenizer.unk_token_id else comma
    chunks: list[tuple[list[int], list[float]]] = []
    for seg in segments:
        ids: list[int] = []
        ws: list[float] = []
        for part, w in seg:
            t = tokenizer(part, add_special_tokens=False, truncation=False, verbose=False)
            ids += t.input_ids
            ws += [w] * len(t.input_ids)
        chunks += _cut(ids, ws, tokenizer.model_max_length - 2, comma)
    return chunks


def _cut(ids: list[int], ws: list[float], size: int, comma: int | None
         ) -> list[tuple[list[int], list[float]]]:
    """Chunks of ``size`` tokens; a full chunk whose last comma is at most ``COMMA_BACKTRACK``
    tokens from its end passes the words after that comma to the next chunk (A1111)."""
    out: list[tuple[list[int], list[float]]] = []
    cur: tuple[list[int], list[float]] = ([], [])
    last_comma = -1
    for t, w in zip(ids, ws, strict=True):
        n = len(cur[0])
        if comma is not None and t == comma:
            last_comma = n
        elif n == size and last_comma >= 0 and n - last_comma <= COMMA_BACKTRACK:
            keep = last_comma + 1
            out.append((cur[0][:keep], cur[1][:keep]))
            cur, last_comma = (cur[0][keep:], cur[1][keep:]), -1
        if len(cur[0]) == size:
            out.append(cur)
            cur, last_comma = ([], []), -1
        cur[0].append(t)
        cur[1].append(w)
    if cur[0] or not out:
        out.append(cur)
    return out


def longer_than_one_chunk(tokenizer, texts: Sequence[str]) -> list[str]:
    """The texts that a literal (one-chunk) encoding cuts short."""
    size = tokenizer.model_max_length - 2
    return [t for t in texts
            if len(tokenizer(t, add_special_tokens=False, verbose=False).input_ids) > size]


def chunk_ids(tokenizer, ids: list[int], weights: list[float]) -> tuple[list[int], list[float]]:
    """``BOS + ids + EOS + padding`` to ``model_max_length``, weights 1 outside ``ids``."""
    n = tokenizer.model_max_length
    full = [tokenizer.bos_token_id, *ids, tokenizer.eos_token_id]
    pad = n - len(full)
    return full + [tokenizer.pad_token_id] * pad, [1.0, *weights] + [1.0] * (pad + 1)


def encoder_hidden(encoder, ids: torch.Tensor, clip_skip: int, *, sdxl: bool
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden states the UNet reads, the encoder's first output) for token ``ids``.

    SD 1.x/2.x: the last layer, or layer ``-(clip_skip + 1)`` through the final layer norm;
    SDXL: layer ``-(clip_skip + 2)`` with no final norm (diffusers' convention).
    """
    out = encoder(ids, output_hidden_states=True)
    if sdxl:
        return out.hidden_states[-(clip_skip + 2)], out[0]
    if clip_skip:
        norm = getattr(encoder, "text_model", encoder).final_layer_norm
        return norm(out.hidden_states[-(clip_skip + 1)]), out[0]
    return out[0], out[0]


def emphasize(z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """A1111's rule on one chunk ``z`` [L, D]: weight each token, restore the mean."""
    if bool((weights == 1).all()):
        return z
    mean = z.float().mean()
    w = z * weights.to(z.dtype)[:, None]
    return w * (mean / w.float().mean()).to(z.dtype)


def match_lengths(*contexts: torch.Tensor) -> list[torch.Tensor]:
    """Repeat each [B, L, D] context along L to the least common multiple of the lengths."""
    n = math.lcm(*(c.shape[1] for c in contexts))
    return [c if c.shape[1] == n else c.repeat(1, n // c.shape[1], 1) for c in contexts]


def _encode_one(tokenizer, encoder, prompts: Sequence[str], clip_skip: int, sdxl: bool,
                device) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per prompt: its chunks' hidden states joined [n·L, D], and its first chunk's output."""
    per_prompt = [token_chunks(tokenizer, p) for p in prompts]
    rows = [chunk_ids(tokenizer, ids, ws) for chunks in per_prompt for ids, ws in chunks]
    ids = torch.tensor([r[0] for r in rows], device=device)
    hidden, first = encoder_hidden(encoder, ids, clip_skip, sdxl=sdxl)
    weights = torch.tensor([r[1] for r in rows], device=device)
    joined, firsts, k = [], [], 0
    for chunks in per_prompt:
        z = [emphasize(hidden[k + c], weights[k + c]) for c in range(len(chunks))]
        joined.append(torch.cat(z, dim=0))
        firsts.append(first[k])
        k += len(chunks)
    return joined, firsts


def encode_weighted(comp: Any, prompts: Sequence[str], *, clip_skip: int = 0,
                    device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """``{"hidden": [B, L, D]}`` (SD) or ``{"hidden", "pooled"}`` (SDXL) with A1111 syntax;
    prompts with fewer chunks than others in the batch are repeated whole (``match_lengths``)."""
    device = device or comp.text_encoder.device
    pairs = [(comp.tokenizer, comp.text_encoder)]
    if comp.is_sdxl:
        pairs.append((comp.tokenizer_2, comp.text_encoder_2))
    parts = [_encode_one(tok, enc, prompts, clip_skip, comp.is_sdxl, device)
             for tok, enc in pairs]
    if len({tuple(h.shape[0] for h in p[0]) for p in parts}) > 1:
        raise ValueError("the two SDXL tokenizers cut the prompt into different chunks")
    per_prompt = [torch.cat([p[0][i] for p in parts], dim=-1) for i in range(len(prompts))]
    out = {"hidden": torch.cat(match_lengths(*(h[None] for h in per_prompt)))}
    if comp.is_sdxl:
        out["pooled"] = torch.stack(parts[-1][1])
    return out
