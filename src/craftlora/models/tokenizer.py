"""A CLIP-style byte-level BPE tokenizer built with the ``tokenizers`` library.

The files follow CLIP's layout (``vocab.json`` + ``merges.txt``, end-of-word suffix ``</w>``,
``<|startoftext|>`` / ``<|endoftext|>``), so ``transformers.CLIPTokenizer`` loads them unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from tokenizers.pre_tokenizers import ByteLevel

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
EOW = "</w>"
# CLIP's own pre-tokenizer pattern, reduced to ASCII classes (letters, single digits, symbols).
_WORD = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")


def _words(texts: Iterable[str]) -> Iterable[str]:
    for t in texts:
        yield " ".join(_WORD.findall(" ".join(t.lower().split())))


def build_clip_tokenizer(
    corpus: Iterable[str], out_dir: str | Path, *, vocab_size: int = 1024, max_length: int = 77
) -> Path:
    """Train BPE merges on ``corpus`` and write CLIP-format files to ``out_dir``; return it.

    The vocabulary is every byte symbol, every byte symbol + ``</w>``, one token per merge in
    merge order, then the two special tokens, exactly as CLIP builds its own.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    alphabet = ByteLevel.alphabet()
    n_base = 2 * len(alphabet) + 2
    if vocab_size <= n_base:
        raise ValueError(f"vocab_size must exceed {n_base} (bytes, bytes</w>, specials)")
    tok = Tokenizer(models.BPE(end_of_word_suffix=EOW))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - n_base + len(alphabet),
        end_of_word_suffix=EOW,
        initial_alphabet=alphabet,
        show_progress=False,
        min_frequency=1,
    )
    tok.train_from_iterator(_words(corpus), trainer=trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in merges]
    symbols = sorted(alphabet, key=lambda c: ord(c) if len(c) == 1 else 0)
    vocab_list = symbols + [s + EOW for s in symbols]
    seen = set(vocab_list)
    kept: list[tuple[str, str]] = []
    for a, b in merges:
        if a not in seen or b not in seen or a + b in seen:
            continue
        if len(vocab_list) >= vocab_size - 2:
            break
        vocab_list.append(a + b)
        seen.add(a + b)
        kept.append((a, b))
    vocab_list += [BOS, EOS]
    vocab = {t: i for i, t in enumerate(vocab_list)}
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in kept]
    (out / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    special = {
        "model_max_length": max_length,
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "pad_token": EOS,
        "do_lower_case": True,
        "tokenizer_class": "CLIPTokenizer",
    }
    (out / "tokenizer_config.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    return out


def load_clip_tokenizer(folder: str | Path):
    """``CLIPTokenizer`` from a folder written by :func:`build_clip_tokenizer` (offline)."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
