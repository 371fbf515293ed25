"""`craftlora compare WS --model M --lora A.safetensors`: base vs LoRA on the same prompts and
seeds (FD in a judge's feature space, attribute agreement, the judge's ceiling)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from craftlora.cli.app import MEASURE, app, console, fail, print_json
from craftlora.models.presets import MINI_NAMES, PresetError, preset_for, presets_help


def _mini_kiln_workspace(ws: Path) -> bool:
    """Every attribute and value of WS is mini-kiln's, so the mini world's judge can read it."""
    from craftlora.config import CONFIG_NAME, load_config
    from craftlora.mini.kiln import ATTRIBUTES

    attrs = load_config(ws / CONFIG_NAME).attributes
    return all(set(a.values) <= set(ATTRIBUTES.get(name, ())) for name, a in attrs.items())


def _judge(judge: str | None, model: str, ws: Path, size: int) -> Path | None:
    """``mini`` (the default on the mini base with a mini-kiln workspace): the mini world's
    shipped judge for this image size; a checkpoint path; or none (FD in a generic feature
    space, no agreement)."""
    if judge is None:
        judge = "mini" if model in MINI_NAMES and _mini_kiln_workspace(ws) else None
    if judge is None:
        return None
    if judge != "mini":
        return Path(judge).resolve()
    from craftlora.mini.judge import shipped_judge

    path, why = shipped_judge(size)
    if path is None:
        fail(f"--judge mini: {why}; give a classifier checkpoint instead")
    return path


def _pair(pair: str | None) -> tuple[str, str] | None:
    if pair is None:
        return None
    parts = tuple(p.strip() for p in pair.split(","))
    if len(parts) != 2 or not all(parts):
        fail(f"--pair {pair}: give two attributes, e.g. glaze,type")
    return parts  # type: ignore[return-value]


@app.command(rich_help_panel=MEASURE)
def compare(
    ws: Annotated[Path, typer.Argument(help="workspace folder (prompts from its test split)")],
    model: Annotated[str, typer.Option(help="base model: mini, a diffusers folder or a "
                                            ".safetensors file; sampler, steps, CFG, clip skip "
                                            f"and size default to its preset ({presets_help()})")],
    lora: Annotated[Path | None, typer.Option(help="LoRA .safetensors (diffusers format)")]
    = None,
    vs_lora: Annotated[Path | None, typer.Option(help="a second LoRA, compared on the same "
                                                      "prompts and seeds")] = None,
    prompts: Annotated[int, typer.Option(min=1, help="prompts (one image each per model)")]
    = 320,
    judge: Annotated[str | None, typer.Option(
        help="'mini' (the mini world's judge; the default on the mini base with a mini-kiln "
             "workspace) or a checkpoint "
             "from `craftlora classify train`; without one, FD is in --features' space and "
             "there is no attribute agreement")] = None,
    features: Annotated[str, typer.Option(help="feature space for FD when there is no judge "
                                               "(inception, clip, pixels, …)")] = "inception",
    pair: Annotated[str | None, typer.Option(help="two attributes read together, e.g. "
                                                  "glaze,type (default when the judge reads "
                                                  "both)")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder (default WS/compare)")] = None,
    weight: Annotated[float, typer.Option(help="LoRA weight")] = 1.0,
    sampler: Annotated[str | None, typer.Option(help="A1111 sampler name [default: the "
                                                     "model's preset]")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="sampling steps [default: preset]")]
    = None,
    cfg: Annotated[float | None, typer.Option(help="classifier-free guidance scale [default: "
                                                   "preset]")] = None,
    clip_skip: Annotated[int | None, typer.Option(min=1, help="A1111 clip skip (1 = last "
                                                              "layer) [default: preset]")]
    = None,
    size: Annotated[int | None, typer.Option(min=8, help="image size in pixels [default: "
                                                         "preset]")] = None,
    workers: Annotated[int, typer.Option(min=1, help="generation processes")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Generate base (and LoRA) images on the same prompts and seeds, then measure them.

    Writes OUT/compare.json and OUT/compare.html (a grid); a rerun reuses the images on disk.
    Sampler, steps, CFG, clip skip and size default to the model family's preset (--model).
    """
    from craftlora.catalog.workspace import WorkspaceError
    from craftlora.generate.compare import CompareSettings
    from craftlora.generate.compare import compare as run_compare
    from craftlora.metrics.weights import MissingWeightsError
    from craftlora.models.loader import ModelSourceError

    loras = {name: str(p.resolve()) for name, p in (("lora", lora), ("vs_lora", vs_lora)) if p}
    for name, p in loras.items():
        if not Path(p).is_file():
            fail(f"--{name.replace('_', '-')} {p}: no such file")
    preset: Any = None  # read only for what the flags leave unset
    if None in (sampler, steps, cfg, clip_skip, size):
        try:
            preset = preset_for(model)
        except PresetError as e:
            fail(e)
    ws = ws.resolve()
    target = (out or ws / "compare").resolve()
    try:
        s = CompareSettings(model=model, loras=loras, weight=weight, prompts=prompts,
                            sampler=sampler or preset.sampler, steps=steps or preset.steps,
                            cfg=preset.cfg if cfg is None else cfg,
                            clip_skip=clip_skip or preset.clip_skip,
                            size=size or preset.resolution)
        res = run_compare(ws, target, s, _judge(judge, model, ws, s.size), workers=workers,
                          progress=not as_json, pair=_pair(pair), features=features)
    except (WorkspaceError, ModelSourceError, MissingWeightsError, OSError, ValueError) as e:
        fail(e)
    if as_json:
        print_json(res)
        return
    from craftlora.generate.compare import figures_table

    rows = ("base", *loras, "judge_ceiling", "decoder_ceiling")
    t = figures_table(res, {r: r.replace("_", " ") for r in rows},
                      f"same {res['prompts']} prompts and seeds; FD in {res['feature_space']}")
    console.print(t)
    if res["judge"] is None:
        console.print(res["agreement"])
    console.print(f"wrote {target / 'compare.json'} and {target / 'compare.html'}")

