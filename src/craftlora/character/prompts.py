"""The prompt set: combinations of pose, view, framing, expression and background, each with
the identity features from the spec and a negative, written as a generation plan (TOML) the
user edits before ``craftlora generate``.

Sets in the plan: ``candidates`` (one image per combination, the training candidates) and,
on combinations the candidates never use, ``eval-base`` (the description spelled out: the best
a base can do) and ``eval-lora`` (trigger + tags + the LoRA tag), ``per_prompt`` images each.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from craftlora.generate.plan_model import GenerationSettings, Plan, PlanEntry, PlanSet, save_plan
from craftlora.generate.prompts import DEFAULT_NEGATIVE, PromptSpec

AXES: dict[str, tuple[str, ...]] = {
    "pose": ("standing", "arms up", "waving", "sitting", "jumping"),
    "view": ("front view", "from left", "from right"),
    "framing": ("full body", "upper body", "close-up"),
    "expression": ("smile", "open mouth", "closed mouth"),
    "background": ("green background", "teal background", "grey background",
                   "orange background", "yellow background", "striped green background",
                   "dotted teal background", "checked grey background"),
}
NEGATIVE = f"{DEFAULT_NEGATIVE}, watermark, text, signature, distorted, extra limbs"


def identity_phrases(spec: dict[str, Any]) -> list[str]:
    """One phrase per identity object: its name, then its first position phrase."""
    out = []
    for obj in spec["objects"]:
        pos = obj["position"]
        where = pos if isinstance(pos, str) else pos[0]
        out.append(f"{obj['name']} {where}".strip())
    return out


def tags_of(attributes: dict[str, str]) -> list[str]:
    return [attributes[k] for k in AXES if k in attributes]


def combinations(n: int, seed: int, exclude: set[tuple[str, ...]] = frozenset()
                 ) -> list[dict[str, str]]:
    """``n`` distinct seeded combinations of the axes, none in ``exclude``."""
    every = [c for c in itertools.product(*AXES.values()) if c not in exclude]
    if n > len(every):
        raise ValueError(f"{n} combinations asked, {len(every)} available")
    pick = np.random.default_rng(seed).choice(len(every), size=n, replace=False)
    return [dict(zip(AXES, every[i], strict=True)) for i in sorted(pick)]


def _entry(prefix: str, i: int, attrs: dict[str, str], prompt: str, count: int) -> PlanEntry:
    return PlanEntry(id=f"{prefix}{i:03d}", tier="manual", count=count, attributes=attrs,
                     prompt=prompt)


def prompt_plan(spec: dict[str, Any], trigger: str, *, candidates: int, eval_prompts: int,
                per_prompt: int, lora: str, model: str = "mini", seed: int = 0,
                generation: dict[str, Any] | None = None) -> Plan:
    """The plan of the three sets (see the module docstring)."""
    ident = identity_phrases(spec)
    cand = combinations(candidates, seed)
    held = combinations(eval_prompts, seed + 1, exclude={tuple(c.values()) for c in cand})
    full = [_entry("c", i, a, ", ".join([trigger, *ident, *tags_of(a)]), 1)
            for i, a in enumerate(cand)]
    base = [_entry("e", i, a, ", ".join([*tags_of(a), spec["description"], *ident]),
                   per_prompt) for i, a in enumerate(held)]
    with_lora = [_entry("e", i, a, ", ".join([trigger, *tags_of(a)]) + f" <lora:{lora}:1>",
                        per_prompt) for i, a in enumerate(held)]
    return Plan(
        workspace="", strategy="character", by=list(AXES),
        notes=[f"character {trigger!r}: {len(cand)} candidate prompts, {len(held)} held-out "
               f"evaluation prompts × {per_prompt}"],
        generation=GenerationSettings(model=model, seed=seed, **(generation or {})),
        prompt=PromptSpec(negative=NEGATIVE),
        sets=[PlanSet(name="candidates", purpose="training candidates", entries=full),
              PlanSet(name="eval-base", purpose="base, description spelled out", entries=base),
              PlanSet(name="eval-lora", purpose="LoRA, trigger + tags", entries=with_lora)])


def write_prompts(path: Path, plan: Plan) -> Path:
    save_plan(plan, path)
    return path
