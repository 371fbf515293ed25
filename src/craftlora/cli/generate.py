"""`craftlora plan` and `craftlora generate`: plan synthetic sets, then make them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from craftlora.catalog.workspace import Workspace, WorkspaceError
from craftlora.cli.app import (
    GENERATE,
    app,
    console,
    err_console,
    fail,
    model_source,
    print_json,
)
from craftlora.config import ConfigError, read_toml
from craftlora.generate.plan_model import PlanError, load_plan
from craftlora.generate.plan_write import write_plan
from craftlora.generate.planner import DualConfig, TierConfig
from craftlora.generate.prompts import (
    DEFAULT_LORA_WEIGHT,
    LoraNotFoundError,
    PromptSpec,
    PromptSyntaxError,
)
from craftlora.models.presets import PresetError, get_preset, model_family, presets_help

PHRASES_FILE = "prompt_phrases.toml"


class PlannerFile(BaseModel):
    """``--config`` file of ``craftlora plan``: ``[tiers]``, ``[dual]``, ``[prompt]`` and
    ``[generation]`` (settings that replace the model preset's) tables."""

    model_config = ConfigDict(extra="forbid")
    tiers: TierConfig = Field(default_factory=TierConfig)
    dual: DualConfig = Field(default_factory=DualConfig)
    prompt: PromptSpec | None = None
    generation: dict[str, Any] = Field(default_factory=dict)


def _read_toml(path: Path, what: str) -> dict:
    return read_toml(path, what, PlanError)


def _planner_file(path: Path | None) -> PlannerFile:
    if path is None:
        return PlannerFile()
    try:
        return PlannerFile.model_validate(_read_toml(path, "planner config"))
    except ValidationError as e:
        keys = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise PlanError(f"{path}: invalid planner config: {keys}") from e


def _prompt_spec(ws: Workspace, base: PromptSpec | None, phrases: Path | None) -> PromptSpec:
    """Phrases from ``--phrases`` or ``WS/prompt_phrases.toml`` (tables function, morphology)."""
    spec = base or PromptSpec()
    path = phrases or (ws.root / PHRASES_FILE)
    if phrases is None and not path.is_file():
        return spec
    raw = _read_toml(path, "phrases file")
    unknown = sorted(set(raw) - {"function", "morphology"})
    if unknown:
        raise PlanError(f"{path}: unknown tables {unknown} (expected function, morphology)")
    return spec.model_copy(
        update={
            "function": {**spec.function, **raw.get("function", {})},
            "morphology": {**spec.morphology, **raw.get("morphology", {})},
        }
    )


@app.command("plan", rich_help_panel=GENERATE)
def plan_cmd(
    ws: Annotated[Path, typer.Argument(help="workspace folder")],
    strategy: Annotated[str, typer.Option(help="tiers (seven-tier) or dual (two sets)")] = "tiers",
    total: Annotated[
        int | None, typer.Option(help="images in the (comprehensive) set; fills tier 7")
    ] = None,
    share: Annotated[list[float] | None, typer.Option(help="size by share of train + synthetic instead of --total (dual: give it twice, minimal then comprehensive)")] = None,  # noqa: E501
    margin: Annotated[float, typer.Option(min=0, help="extra share generated for QC losses (with --share)")] = 0.2,  # noqa: E501
    out: Annotated[Path | None, typer.Option(help="plan file (default WS/plan.toml)")] = None,
    by: Annotated[
        str, typer.Option(help="combination attributes, e.g. glaze,type (default: all)")
    ] = "",
    confusion: Annotated[
        Path | None, typer.Option(help="confusion matrix JSON/CSV or an experiment results.json")
    ] = None,
    valid: Annotated[
        Path | None, typer.Option(help="CSV/JSON of valid combinations besides the observed")
    ] = None,
    lora: Annotated[
        list[str] | None,
        typer.Option(
            help=f"LoRA NAME or NAME:WEIGHT for every prompt (weight {DEFAULT_LORA_WEIGHT})"
        ),
    ] = None,
    phrases: Annotated[
        Path | None, typer.Option(help=f"function/morphology phrases (default WS/{PHRASES_FILE})")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="planner TOML: [tiers] targets, [dual], [prompt], [generation]"),
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            help="model the images will come from: mini, a diffusers folder or a .safetensors "
            f"file; sampler, steps, CFG and clip skip default to its preset ({presets_help()})"
        ),
    ] = "mini",
    split: Annotated[str, typer.Option(help="count real images of this split, or 'all'")] = "train",
    seed: Annotated[int, typer.Option(help="base seed of the per-image seeds")] = 0,
    force: Annotated[bool, typer.Option(help="overwrite an existing plan file")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Plan what to generate from the data's gaps; writes an editable plan TOML."""
    try:
        with Workspace.open(ws) as w:
            pf = _planner_file(config)
            spec = _prompt_spec(w, pf.prompt, phrases)
            tags = []
            for item in lora or []:
                name, _, weight = item.partition(":")
                tags.append(f"<lora:{name}:{weight or DEFAULT_LORA_WEIGHT}>")
            spec = spec.model_copy(update={"loras": [*spec.loras, *tags]})
            target = out or (w.root / "plan.toml")
            plan, sized = write_plan(
                w, target, strategy=strategy, shares=share or (), margin=margin, total=total,
                by=[b.strip() for b in by.split(",") if b.strip()] or None, tiers=pf.tiers,
                dual=pf.dual, confusion=confusion, valid=valid,
                split=None if split == "all" else split, prompt=spec, seed=seed,
                model=model_source(model), generation=pf.generation, force=force)
    except (PlanError, ConfigError, WorkspaceError, PromptSyntaxError, ValueError) as e:
        fail(e)
    summary = {
        "plan": str(target),
        "strategy": plan.strategy,
        "by": plan.by,
        "generation": plan.generation.model_dump(mode="json", exclude_none=True),
        "sets": {
            s.name: {
                "images": s.total,
                "combinations": len(s.entries),
                "tiers": _tiers(s),
                **sized["sets"][s.name],
            }
            for s in plan.sets
        },
        "notes": plan.notes,
    }
    if as_json:
        print_json(summary)
        return
    for name, s in summary["sets"].items():
        console.print(f"[bold]{name}[/]: {s['images']} images, {s['combinations']} combinations")
        for tier, t in s["tiers"].items():
            console.print(
                f"  {tier:<14} {t['combinations']:>4} combinations {t['images']:>6} images"
            )
    g = plan.generation
    console.print(
        f"generation: {g.sampler}, {g.steps} steps, CFG {g.cfg:g}, clip skip {g.clip_skip} "
        f"(model {g.model})", highlight=False, markup=False,
    )
    for n in plan.notes:
        console.print(f"  note: {n}", highlight=False, markup=False)
    loras = " --lora-dir FOLDER_OF_THE_LORA" if plan.prompt.loras else ""
    console.print(
        f"plan written to {target}; edit it, then `craftlora generate {ws} --plan {target}"
        f"{loras}`"
    )


def _tiers(s) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for e in s.entries:
        t = out.setdefault(e.tier, {"combinations": 0, "images": 0})
        t["combinations"] += 1
        t["images"] += e.count
    return out


@app.command("generate", rich_help_panel=GENERATE)
def generate_cmd(
    ws: Annotated[Path, typer.Argument(help="workspace folder")],
    plan: Annotated[Path, typer.Option(help="plan TOML written by `craftlora plan`")],
    set_name: Annotated[str | None, typer.Option("--set", help="which set of the plan")] = None,
    sketch: Annotated[
        Path | None, typer.Option(help="sketch image guiding every image (needs a ControlNet)")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="mini, a diffusers folder or a .safetensors checkpoint "
            "(default: the plan's [generation] model)"
        ),
    ] = None,
    lora_dir: Annotated[
        list[Path] | None,
        typer.Option(
            help="folder holding NAME.safetensors for each <lora:NAME:w> in the prompts "
            "(repeatable; WS/loras is always searched), e.g. the train run's output_dir"
        ),
    ] = None,
    controlnet: Annotated[
        str | None, typer.Option(help="ControlNet folder or .safetensors (overrides the plan)")
    ] = None,
    init_image: Annotated[
        Path | None, typer.Option(help="start every image from this one (img2img)")
    ] = None,
    strength: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="img2img / inpainting denoising strength: "
                            "0 keeps the init image, 1 ignores it (A1111's default 0.75)")
    ] = 0.75,
    mask: Annotated[
        Path | None, typer.Option(help="inpainting mask for --init-image: white = repaint")
    ] = None,
    refiner: Annotated[
        Path | None, typer.Option(help="SDXL refiner folder: a light img2img pass after the base")
    ] = None,
    model_config: Annotated[
        Path | None, typer.Option(help="single-file model: a local diffusers folder of the same "
                                  "architecture (default: the config shipped for its family)")
    ] = None,
    tokenizer: Annotated[
        Path | None, typer.Option(help="single-file model: a folder with CLIP's vocab.json + "
                                  "merges.txt (or tokenizer.json), when --model-config has none")
    ] = None,
    prediction_type: Annotated[
        str | None, typer.Option(help="epsilon or v_prediction; SD 2.x single files default to "
                                 "v_prediction (768 px SD 2.1), pass epsilon for 512 px base")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="images per pipeline call")] = None,
    limit: Annotated[int | None, typer.Option(help="stop after N new images")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ...")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Generate a plan's set into the catalog (resumable; shards under `accelerate launch`)."""
    from craftlora.catalog.store import CatalogError
    from craftlora.generate.controlnet import SketchError
    from craftlora.generate.runner import generate

    try:
        planned_for = load_plan(plan).generation.model
        source = model_source(model) if model else planned_for
        _warn_other_family(source, planned_for)
        with Workspace.open(ws) as w:
            result = generate(
                w,
                plan,
                set_name,
                model=source,
                lora_dirs=[d.absolute() for d in lora_dir or []],
                sketch=sketch.absolute() if sketch else None,
                controlnet=model_source(controlnet) if controlnet else None,
                init_image=init_image.absolute() if init_image else None,
                mask=mask.absolute() if mask else None,
                strength=strength,
                refiner=refiner.absolute() if refiner else None,
                model_options={
                    "config": model_config.absolute() if model_config else None,
                    "tokenizer": tokenizer.absolute() if tokenizer else None,
                    "prediction_type": prediction_type,
                },
                batch_size=batch_size,
                limit=limit,
                device=device,
                progress=not as_json,
            )
    except LoraNotFoundError as e:
        fail(f"{e}; pass --lora-dir FOLDER (where the LoRA's .safetensors is, e.g. the train "
             "run's output folder; repeatable) or copy the file into WS/loras")
    except (
        PlanError,
        ConfigError,
        WorkspaceError,
        PromptSyntaxError,
        SketchError,
        CatalogError,
        ValueError,
        OSError,
    ) as e:
        fail(e)
    d = result.to_dict()
    if as_json:
        print_json(d)
        return
    console.print(
        f"set [bold]{d['set']}[/]: made {d['made']}, already present {d['already_present']}, "
        f"of {d['in_shard']} in this process ({d['planned']} planned); "
        f"{d['images_per_s']} images/s"
    )
    if d["contour_images"]:
        console.print(
            f"contour adherence (tolerant F1 at 2 px), mean over {d['contour_images']} "
            f"sketch-guided images: {d['contour_tolerant_f1_mean']:.3f} (Canny)"
            + (
                f", {d['contour_vessel_f1_mean']:.3f} (vessel outline)"
                if d["contour_vessel_f1_mean"] is not None
                else ""
            )
        )
    if d["duplicates"]:
        console.print(f"{len(d['duplicates'])} images duplicated an existing one and were dropped")


def _warn_other_family(source: str, planned_for: str) -> None:
    """A note on stderr when --model is of another family than the plan's settings were for."""
    try:
        now, then = model_family(source), model_family(planned_for)
    except PresetError:
        return
    if now != then:
        err_console.print(
            f"note: the plan's [generation] settings were chosen for {get_preset(then).label}; "
            f"this model's preset is {get_preset(now).summary()}; edit them or plan again "
            "with --model",
            highlight=False, markup=False, soft_wrap=True,
        )
