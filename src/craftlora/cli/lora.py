"""`craftlora lora check|convert`: a LoRA file from any trainer against a base model, and between
sd-scripts' names, diffusers-path kohya names and the diffusers/peft form."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import TRAIN, app, console, fail, model_source, print_json

lora_app = typer.Typer(help="LoRA files: check one against a model, convert between forms.",
                       no_args_is_help=True)
app.add_typer(lora_app, name="lora", rich_help_panel=TRAIN)

FileArg = Annotated[Path, typer.Argument(help="LoRA .safetensors file (kohya or diffusers/peft)")]
ModelOpt = Annotated[str, typer.Option(
    "--model", "-m", help="base model: mini, a diffusers folder or a single file")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]


def _models(model: str):
    from craftlora.models.loader import load_components
    from craftlora.models.lora_import import pipeline_models

    comp = load_components(model_source(model))
    return pipeline_models(comp), comp.prediction_type


@lora_app.command("check")
def check(file: FileArg, model: ModelOpt, as_json: JsonOpt = False) -> None:
    """Say whether FILE loads onto MODEL, and what it holds (parts, ranks, alphas, spelling)."""
    from craftlora.models.lora import LoraFormatError
    from craftlora.models.lora_files import describe_lora

    models, prediction = _models(model)
    try:
        info = describe_lora(file, models, prediction)
    except LoraFormatError as e:
        fail(e)
    if as_json:
        print_json(info)
        return
    console.print(f"[bold]{file}[/]: {info['form']} form, UNet {info['unet_spelling']}, "
                  f"{'/'.join(info['dtypes'])}")
    for part, s in info["parts"].items():
        console.print(f"  {part}: {s['modules']} modules ({s['conv_3x3']} 3×3 conv), "
                      f"rank {s['ranks']}, alpha {s['alphas']}")
    if not info["base_matches"]:
        console.print(f"  [yellow]labelled {info['file_base_model']}, the model is "
                      f"{info['model_base']}[/]")
    left = info["comfyui_unloaded"]
    console.print("  ComfyUI: every key maps" if not left else
                  f"  [yellow]ComfyUI would not load {len(left)} keys, e.g. {left[0]}[/]")


@lora_app.command("convert")
def convert(
    file: FileArg,
    out: Annotated[Path, typer.Argument(help="output .safetensors (kohya) or folder (peft)")],
    model: ModelOpt,
    form: Annotated[str, typer.Option(help="kohya (A1111 / ComfyUI / sd-scripts) or peft "
                                           "(diffusers load_lora_weights)")] = "kohya",
    layout: Annotated[str, typer.Option(help="kohya names: sd-scripts (SDXL in LDM paths, "
                                             "what sd-scripts resumes and resizes) or diffusers")
                      ] = "sd-scripts",
    precision: Annotated[str, typer.Option(help="fp32, fp16 or bf16")] = "fp32",
    as_json: JsonOpt = False,
) -> None:
    """Rewrite FILE for MODEL in another form or naming (outputs unchanged at fp32)."""
    from craftlora.models.lora import LoraFormatError
    from craftlora.models.lora_files import convert_lora

    models, prediction = _models(model)
    try:
        path = convert_lora(file, out, models, form=form, layout=layout,  # type: ignore[arg-type]
                            precision=precision, prediction_type=prediction)
    except LoraFormatError as e:
        fail(e)
    if as_json:
        print_json({"file": str(file), "written": str(path), "form": form, "layout": layout,
                    "precision": precision})
    else:
        console.print(f"wrote {path}")
