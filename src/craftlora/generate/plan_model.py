"""The generation plan: a TOML file the planner writes and a user may edit before generating.

A plan holds generation settings, the prompt recipe and one or more sets; each set is a list
of entries, one per combination, with the tier that put it there and the number of images.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from craftlora.config import WorkspaceConfig, read_toml, validate
from craftlora.data.atomic import atomic_write_bytes
from craftlora.generate.prompts import DEFAULT_NEGATIVE, PromptSpec
from craftlora.models.presets import PresetError, preset_for

PLAN_VERSION = 1
TIERS = (
    "extreme_rare",
    "very_rare",
    "confusion",
    "moderate_rare",
    "type_balance",
    "glaze_balance",
    "general",
)
_PRESET_FIELDS = ("steps", "cfg", "sampler", "clip_skip")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


class PlanError(ValueError):
    """A plan file is missing, malformed or does not fit the workspace; names file and fault."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerationSettings(_Strict):
    """Sampling settings (A1111 names); unset steps, cfg, sampler and clip skip come from the
    preset of ``model``'s family (``craftlora.models.presets``)."""

    model: str = Field(default="mini", description="model source the settings are meant for")
    steps: int = Field(ge=1, le=1000)
    cfg: float = Field(ge=0.0)
    sampler: str
    clip_skip: int = Field(ge=1, description="A1111 convention: 2 = penultimate")
    width: int | None = Field(default=None, gt=0, description="None = the model's own size")
    height: int | None = Field(default=None, gt=0)
    batch_size: int = Field(default=4, ge=1)
    seed: int = 0
    controlnet: str = Field(default="", description="folder of a diffusers ControlNetModel")
    controlnet_scale: float = Field(default=1.0, ge=0.0)
    sketch_mode: str = Field(
        default="lines", description="lines: ink on a plain background; edges: use as is"
    )
    levers: list[str] = Field(
        default_factory=list,
        description="UNet speed levers (craftlora.models.fast): bf16 on AVX-512-BF16 / AMX CPUs",
    )

    @model_validator(mode="before")
    @classmethod
    def _preset_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        unset = [k for k in _PRESET_FIELDS if k not in data]
        if not unset:
            return data
        try:
            preset = preset_for(data.get("model") or "mini")
        except PresetError as e:
            raise ValueError(f"{e}; set {', '.join(unset)} in [generation]") from None
        return {**{k: getattr(preset, k) for k in unset}, **data}

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, v: str) -> str:
        from craftlora.generate.samplers import resolve_sampler

        return resolve_sampler(v).name

    @field_validator("levers")
    @classmethod
    def _known_levers(cls, v: list[str]) -> list[str]:
        from craftlora.models.fast import check_levers

        return check_levers(v)

    @field_validator("sketch_mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in ("lines", "edges"):
            raise ValueError("sketch_mode must be 'lines' or 'edges'")
        return v


class PlanEntry(_Strict):
    id: str
    tier: str
    count: int = Field(ge=0)
    observed: int = Field(default=0, ge=0, description="real images of this combination")
    attributes: dict[str, str]
    prompt: str = Field(default="", description="empty = built from [prompt]")
    sketch: str = Field(default="", description="sketch image for ControlNet guidance")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.fullmatch(v):
            raise ValueError(f"entry id {v!r} must be letters, digits, '_', '-', '.'")
        return v

    @field_validator("tier")
    @classmethod
    def _tier(cls, v: str) -> str:
        if v not in TIERS and v != "manual":
            raise ValueError(f"tier {v!r} is not one of {TIERS + ('manual',)}")
        return v


class PlanSet(_Strict):
    name: str
    purpose: str = ""
    entries: list[PlanEntry] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _ID.fullmatch(v):
            raise ValueError(f"set name {v!r} must be letters, digits, '_', '-', '.'")
        return v

    @model_validator(mode="after")
    def _unique_ids(self) -> PlanSet:
        seen: set[str] = set()
        for e in self.entries:
            if e.id in seen:
                raise ValueError(f"set {self.name!r}: entry id {e.id!r} appears twice")
            seen.add(e.id)
        return self

    @property
    def total(self) -> int:
        return sum(e.count for e in self.entries)


class Plan(_Strict):
    version: int = PLAN_VERSION
    workspace: str = ""
    strategy: str = "tiers"
    by: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    prompt: PromptSpec = Field(default_factory=lambda: PromptSpec(negative=DEFAULT_NEGATIVE))
    sets: list[PlanSet] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_sets(self) -> Plan:
        names = [s.name for s in self.sets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"set names appear twice: {dup}")
        return self

    def get_set(self, name: str | None) -> PlanSet:
        if name is None:
            if len(self.sets) != 1:
                raise PlanError(
                    f"the plan has {len(self.sets)} sets ({', '.join(s.name for s in self.sets)});"
                    " choose one with --set"
                )
            return self.sets[0]
        for s in self.sets:
            if s.name == name:
                return s
        raise PlanError(
            f"no set {name!r} in the plan; sets: {', '.join(s.name for s in self.sets)}"
        )

    def check_against(self, config: WorkspaceConfig) -> None:
        """PlanError naming the entry if any attribute or value is unknown to the workspace."""
        for s in self.sets:
            for e in s.entries:
                for a, v in e.attributes.items():
                    if a not in config.attributes:
                        raise PlanError(f"set {s.name!r} entry {e.id!r}: unknown attribute {a!r}")
                    if v not in config.attributes[a].values:
                        raise PlanError(
                            f"set {s.name!r} entry {e.id!r}: {a} value {v!r} is not allowed "
                            f"by the workspace ({', '.join(config.attributes[a].values)})"
                        )


def load_plan(path: str | Path) -> Plan:
    plan = validate(Plan, read_toml(path, "plan file", PlanError), path, "plan", PlanError)
    if plan.version != PLAN_VERSION:
        raise PlanError(f"{path}: plan version {plan.version}; this craftlora reads {PLAN_VERSION}")
    return plan


_HEADER = """\
# craftlora generation plan. Edit freely, then run:
#   craftlora generate WS --plan THIS_FILE [--set NAME]
# [generation]: model = the model the settings were chosen for (generate's default --model);
#   sampler by its A1111 name; clip_skip in A1111's convention (2 = penultimate
#   layer = diffusers clip_skip=1); width/height unset = the model's size; levers =
#   ["bf16"] runs a float32 UNet in bfloat16: faster on CPUs with AMX or AVX-512-BF16,
#   images within the seed-to-seed spread of float32's (docs/results.md, issue 23).
# [prompt]: template fields {caption} (the workspace caption template), {function},
#   {morphology}, {ATTR}, {ATTR.phrase}; loras = tags appended to every prompt, e.g.
#   "<lora:NAME:0.4>" (a file NAME.safetensors in the LoRA folders).
# Each [[sets.entries]]: count = images to make; prompt = "" builds it from [prompt];
#   sketch = an image path (relative to the workspace) to guide it through a ControlNet.
#   Add your own entries with tier = "manual"; ids must be unique within a set.
# A rerun of generate makes only the images still missing.
"""


def dump_plan(plan: Plan, preview: dict[tuple[str, str], str] | None = None) -> str:
    """The plan as TOML text with explanatory comments (``preview``: set, id -> prompt)."""
    head = plan.model_dump(mode="json", exclude={"sets"}, exclude_none=True)
    parts = [_HEADER, tomli_w.dumps(head)]
    for s in plan.sets:
        tiers: dict[str, list[int]] = {}
        for e in s.entries:
            t = tiers.setdefault(e.tier, [0, 0])
            t[0] += 1
            t[1] += e.count
        summary = "; ".join(f"{k}: {v[0]} combinations, {v[1]} images" for k, v in tiers.items())
        parts.append(f"\n# set {s.name!r}: {s.total} images. {summary}\n[[sets]]\n")
        parts.append(tomli_w.dumps({"name": s.name, "purpose": s.purpose}))
        for e in s.entries:
            parts.append("\n[[sets.entries]]\n")
            if preview and (s.name, e.id) in preview:
                parts.append(f"# prompt: {preview[(s.name, e.id)]}\n")
            body = e.model_dump(mode="json")
            attrs = body.pop("attributes")
            parts.append(tomli_w.dumps(body))
            inline = ", ".join(f"{_key(k)} = {_str(v)}" for k, v in attrs.items())
            parts.append(f"attributes = {{ {inline} }}\n")
    return "".join(parts)


def _key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _str(k)


def _str(v: str) -> str:
    return tomli_w.dumps({"x": v}).split("=", 1)[1].strip()


def save_plan(
    plan: Plan, path: str | Path, preview: dict[tuple[str, str], str] | None = None
) -> None:
    text = dump_plan(plan, preview)
    Plan.model_validate(tomllib.loads(text))  # what we write must read back
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return plan.model_dump(mode="json")
