"""Prompts: caption template + function and morphology phrases, and A1111 LoRA tags.

A prompt is built from the workspace caption template (``{attr}`` = the value,
``{attr.phrase}`` = its descriptive phrase), then the function and morphology phrases the
porcelain study found to translate best ("vase for display only", "no spout or handle"), then
the LoRA tags. LoRA tags use AUTOMATIC1111's syntax:

- ``<lora:name>`` (weight 1.0), ``<lora:name:0.4>``,
- ``<lora:name:te:unet>`` (text-encoder and UNet weights apart),
- named fields ``<lora:name:unet=0.4:te=0.2>``.

A name may hold spaces (``<lora:my lora:0.5>``), not ``/``, ``\\``, ``:`` or ``=``. Tags are
taken out of the text the model sees; everything else (emphasis such as ``((glossy:1.2))``,
``BREAK``) is left as written for the text encoding to read (``models.prompt_weights``).
A malformed tag is an error that says where it is; a LoRA with no file is an
error that names the LoRA and the folders searched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from craftlora.config import WorkspaceConfig
from craftlora.data.captions import render_caption

DEFAULT_NEGATIVE = "low quality, blurry, modern, damaged, cracked"
DEFAULT_TEMPLATE = "{caption}, {function}, {morphology}"
DEFAULT_LORA_WEIGHT = 0.4

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.(phrase))?\}")
_TAG_OPEN = re.compile(r"<\s*lora\s*:", re.IGNORECASE)
_NAME = re.compile(r"[^\s<>:=/\\]+(?: +[^\s<>:=/\\]+)*")


class PromptSyntaxError(ValueError):
    """A prompt holds a LoRA tag that cannot be read; the message says which and where."""


class LoraNotFoundError(FileNotFoundError):
    """A prompt names a LoRA for which no safetensors file exists."""


@dataclass(frozen=True)
class LoraRef:
    """One ``<lora:…>`` tag: the LoRA's name and its UNet / text-encoder weights."""

    name: str
    unet: float
    te: float

    def tag(self) -> str:
        if self.te == self.unet:
            return f"<lora:{self.name}:{_num(self.unet)}>"
        return f"<lora:{self.name}:{_num(self.te)}:{_num(self.unet)}>"


@dataclass(frozen=True)
class ParsedPrompt:
    text: str  # the prompt without LoRA tags
    loras: tuple[LoraRef, ...]


def _num(x: float) -> str:
    return f"{x:g}"


def _weight(raw: str, tag: str, pos: int) -> float:
    try:
        w = float(raw)
    except ValueError:
        raise PromptSyntaxError(
            f"LoRA tag {tag!r} at character {pos}: weight {raw!r} is not a number"
        ) from None
    if w != w or w in (float("inf"), float("-inf")):
        raise PromptSyntaxError(f"LoRA tag {tag!r} at character {pos}: weight must be finite")
    return w


def _parse_tag(body: str, tag: str, pos: int) -> LoraRef:
    parts = [p.strip() for p in body.split(":")]
    name = parts[0]
    if not name or not _NAME.fullmatch(name) or name in (".", ".."):
        raise PromptSyntaxError(
            f"LoRA tag {tag!r} at character {pos}: missing or invalid name "
            "(expected <lora:name:weight>)"
        )
    positional: list[float] = []
    named: dict[str, float] = {}
    for p in parts[1:]:
        if "=" in p:
            k, _, v = p.partition("=")
            k = k.strip().lower()
            if k not in ("te", "unet", "dyn"):
                raise PromptSyntaxError(
                    f"LoRA tag {tag!r} at character {pos}: unknown field {k!r} "
                    "(known: te, unet, dyn)"
                )
            named[k] = _weight(v.strip(), tag, pos)
        else:
            if named:
                raise PromptSyntaxError(
                    f"LoRA tag {tag!r} at character {pos}: positional weight after a named one"
                )
            positional.append(_weight(p, tag, pos))
    if len(positional) > 3:
        raise PromptSyntaxError(
            f"LoRA tag {tag!r} at character {pos}: too many fields "
            "(at most <lora:name:te:unet:dyn>)"
        )
    if "dyn" in named or len(positional) == 3:
        raise PromptSyntaxError(
            f"LoRA tag {tag!r} at character {pos}: dynamic-dim (dyn) is not supported"
        )
    # A1111's rule: te = first positional (default 1.0), unet = second (default te); named
    # fields override the positional ones.
    te = named.get("te", positional[0] if positional else 1.0)
    unet = named.get("unet", positional[1] if len(positional) > 1 else te)
    return LoraRef(name=name, unet=unet, te=te)


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Split ``prompt`` into its text and its LoRA tags (in order of appearance)."""
    out: list[str] = []
    loras: list[LoraRef] = []
    i = 0
    for m in _TAG_OPEN.finditer(prompt):
        if m.start() < i:
            continue
        close = prompt.find(">", m.end())
        nxt = _TAG_OPEN.search(prompt, m.end())
        if close < 0 or (nxt is not None and nxt.start() < close):
            raise PromptSyntaxError(
                f"LoRA tag at character {m.start()} is not closed with '>': "
                f"{prompt[m.start() : m.start() + 40]!r}"
            )
        tag = prompt[m.start() : close + 1]
        body = prompt[m.end() : close]
        if "<" in body:
            raise PromptSyntaxError(f"LoRA tag {tag!r} at character {m.start()}: stray '<'")
        ref = _parse_tag(body, tag, m.start())
        if any(r.name == ref.name for r in loras):
            raise PromptSyntaxError(f"LoRA {ref.name!r} is named twice in the prompt")
        loras.append(ref)
        out.append(prompt[i : m.start()])
        i = close + 1
    out.append(prompt[i:])
    return ParsedPrompt(text=_tidy("".join(out)), loras=tuple(loras))


def _tidy(text: str) -> str:
    """Collapse the blanks and empty comma fields that removed tags or phrases leave."""
    parts = [" ".join(p.split()) for p in text.split(",")]
    return ", ".join(p for p in parts if p)


def find_lora_files(loras: Iterable[LoraRef], search_dirs: Sequence[str | Path]) -> dict[str, Path]:
    """The safetensors file for each LoRA name; LoraNotFoundError naming any that is missing.

    A name matches ``DIR/name.safetensors`` or ``DIR/name/pytorch_lora_weights.safetensors``.
    Pickle formats (``.ckpt``, ``.pt``, ``.bin``) are refused, never loaded.
    """
    found: dict[str, Path] = {}
    missing: list[str] = []
    for ref in loras:
        hit = None
        for d in search_dirs:
            d = Path(d)
            for cand in (
                d / f"{ref.name}.safetensors",
                d / ref.name / "pytorch_lora_weights.safetensors",
            ):
                if cand.is_file():
                    hit = cand
                    break
            if hit is None:
                for ext in (".ckpt", ".pt", ".bin", ".pth"):
                    if (d / f"{ref.name}{ext}").is_file():
                        raise LoraNotFoundError(
                            f"LoRA {ref.name!r}: {d / (ref.name + ext)} is a pickle format; "
                            "craftlora loads LoRAs only from .safetensors"
                        )
            if hit is not None:
                break
        if hit is None:
            missing.append(ref.name)
        else:
            found[ref.name] = hit
    if missing:
        where = ", ".join(str(Path(d)) for d in search_dirs) or "(no folders given)"
        raise LoraNotFoundError(
            f"LoRA file not found for {', '.join(repr(m) for m in missing)}: looked for "
            f"NAME.safetensors or NAME/pytorch_lora_weights.safetensors in {where}"
        )
    return found


class PromptSpec(BaseModel):
    """How a plan turns an entry's attributes into a prompt (editable in the plan file)."""

    model_config = ConfigDict(extra="forbid")

    template: str = Field(
        default=DEFAULT_TEMPLATE,
        description="fields: {caption}, {function}, {morphology}, {attr}, {attr.phrase}",
    )
    negative: str = DEFAULT_NEGATIVE
    loras: list[str] = Field(
        default_factory=list, description="LoRA tags appended to every prompt, e.g. <lora:x:0.4>"
    )
    function: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="attribute -> value -> function phrase"
    )
    morphology: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="attribute -> value -> morphology phrase"
    )


def _fill(template: str, config: WorkspaceConfig, attributes: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name, phrase = m.group(1), m.group(2)
        if name not in attributes:
            raise KeyError(f"prompt field {{{name}}} has no value in {dict(attributes)}")
        value = attributes[name]
        if phrase and name in config.attributes:
            return config.phrase(name, value)
        return value

    return _FIELD.sub(sub, template)


def _phrases(table: Mapping[str, Mapping[str, str]], attributes: Mapping[str, str]) -> str:
    return ", ".join(
        table[a][v] for a, v in attributes.items() if a in table and v in table[a] and table[a][v]
    )


def build_prompt(
    config: WorkspaceConfig, attributes: Mapping[str, str], spec: PromptSpec | None = None
) -> str:
    """The full prompt for one combination: template, phrases, then the LoRA tags."""
    spec = spec or PromptSpec()
    for kind, table in (("function", spec.function), ("morphology", spec.morphology)):
        unknown = sorted(set(table) - set(config.attributes))
        if unknown:
            raise ValueError(f"prompt.{kind} names unknown attributes {unknown}")
    ordered = {a: attributes[a] for a in config.attributes if a in attributes}
    fields = {
        "caption": render_caption(config, attributes),
        "function": _phrases(spec.function, ordered),
        "morphology": _phrases(spec.morphology, ordered),
    }
    text = _FIELD.sub(
        lambda m: fields[m.group(1)] if m.group(1) in fields and not m.group(2) else m.group(0),
        spec.template,
    )
    text = _tidy(_fill(text, config, attributes))
    for tag in spec.loras:
        parse_prompt(tag)  # a bad tag in the plan fails here, naming it
    return " ".join([text, *spec.loras]).strip()
