"""Samplers by their AUTOMATIC1111 names, mapped to diffusers schedulers.

A1111 names one sampler by the solver and its noise schedule ("DPM++ 2M Karras"); diffusers
splits that into a scheduler class and config flags. This registry holds the mapping once:

====================  =========================================================================
A1111 name            diffusers
====================  =========================================================================
DPM++ 2M              DPMSolverMultistepScheduler
DPM++ 2M Karras       DPMSolverMultistepScheduler(use_karras_sigmas=True)
DPM++ 2M SDE          DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++")
DPM++ 2M SDE Karras   DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++",
                      use_karras_sigmas=True)
Euler a               EulerAncestralDiscreteScheduler
Euler                 EulerDiscreteScheduler
Heun                  HeunDiscreteScheduler
LMS / LMS Karras      LMSDiscreteScheduler(use_karras_sigmas=...)
DPM2 / DPM2 Karras    KDPM2DiscreteScheduler(use_karras_sigmas=...)
DPM2 a / DPM2 a Karras KDPM2AncestralDiscreteScheduler(use_karras_sigmas=...)
DDIM                  DDIMScheduler
PLMS                  PNDMScheduler
UniPC                 UniPCMultistepScheduler
====================  =========================================================================

Every scheduler is built with ``from_config`` on the model's own scheduler config, so the
training noise schedule (betas, prediction type) carries over and only the solver changes.

**CLIP skip.** A1111 counts the last layer as 1: "Clip skip 1" = use the final layer (no skip),
"Clip skip 2" = the penultimate layer (the SD 1.5 convention). diffusers counts layers
*skipped*: ``clip_skip=1`` = the penultimate layer. So A1111 "Clip skip N" = diffusers
``clip_skip=N-1`` (and ``None`` for N = 1). ComfyUI writes the same as ``stop_at_clip_layer=-N``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplerSpec:
    """One A1111 sampler: a diffusers scheduler class name and config overrides."""

    name: str
    scheduler: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


_K = {"use_karras_sigmas": True}
_SDE = {"algorithm_type": "sde-dpmsolver++"}

SAMPLERS: dict[str, SamplerSpec] = {
    s.name: s
    for s in [
        SamplerSpec("DPM++ 2M", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
        SamplerSpec(
            "DPM++ 2M Karras",
            "DPMSolverMultistepScheduler",
            {"algorithm_type": "dpmsolver++", **_K},
        ),
        SamplerSpec("DPM++ 2M SDE", "DPMSolverMultistepScheduler", _SDE),
        SamplerSpec("DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", {**_SDE, **_K}),
        SamplerSpec("Euler a", "EulerAncestralDiscreteScheduler"),
        SamplerSpec("Euler", "EulerDiscreteScheduler"),
        SamplerSpec("Heun", "HeunDiscreteScheduler"),
        SamplerSpec("LMS", "LMSDiscreteScheduler"),
        SamplerSpec("LMS Karras", "LMSDiscreteScheduler", _K),
        SamplerSpec("DPM2", "KDPM2DiscreteScheduler"),
        SamplerSpec("DPM2 Karras", "KDPM2DiscreteScheduler", _K),
        SamplerSpec("DPM2 a", "KDPM2AncestralDiscreteScheduler"),
        SamplerSpec("DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", _K),
        SamplerSpec("DDIM", "DDIMScheduler"),
        SamplerSpec("PLMS", "PNDMScheduler"),
        SamplerSpec("UniPC", "UniPCMultistepScheduler"),
    ]
}

# Other spellings users paste: sd-scripts (`dpmsolver++`, `k_euler_a`), ComfyUI (`dpmpp_2m` +
# `karras`), and lower-case / underscore forms of the A1111 names.
_ALIASES = {
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_karras": "DPM++ 2M Karras",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_2m_sde_karras": "DPM++ 2M SDE Karras",
    "k_euler_a": "Euler a",
    "euler_a": "Euler a",
    "euler_ancestral": "Euler a",
    "k_euler": "Euler",
    "k_heun": "Heun",
    "k_lms": "LMS",
    "k_dpm_2": "DPM2",
    "k_dpm_2_a": "DPM2 a",
    "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a",
    "pndm": "PLMS",
    "uni_pc": "UniPC",
    "unipc": "UniPC",
}


def _key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower()).replace("+", "p")


_LOOKUP = {_key(n): n for n in SAMPLERS} | {_key(a): n for a, n in _ALIASES.items()}


def sampler_names() -> list[str]:
    """The A1111 names this registry knows, in display order."""
    return list(SAMPLERS)


def resolve_sampler(name: str) -> SamplerSpec:
    """The spec for an A1111 (or sd-scripts/ComfyUI) sampler name; ValueError if unknown."""
    found = _LOOKUP.get(_key(name))
    if found is None:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    return SAMPLERS[found]


def make_scheduler(name: str, base_config: Mapping[str, Any]) -> Any:
    """A diffusers scheduler for ``name`` built from a model's scheduler config."""
    import diffusers

    spec = resolve_sampler(name)
    cls = getattr(diffusers, spec.scheduler)
    return cls.from_config(dict(base_config), **dict(spec.overrides))


def set_sampler(pipe: Any, name: str) -> Any:
    """Replace ``pipe.scheduler`` with the sampler ``name``, keeping the model's schedule."""
    pipe.scheduler = make_scheduler(name, pipe.scheduler.config)
    return pipe.scheduler
