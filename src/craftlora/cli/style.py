"""`craftlora style blocks` (style-block discovery) and `craftlora stylize` (style-block LoRA
inference on a design or a prompt)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import GENERATE, TRAIN, app, console, fail, model_source, print_json

style_app = typer.Typer(help="One-shot style LoRA: style-block discovery.", no_args_is_help=True)
app.add_typer(style_app, name="style", rich_help_panel=TRAIN)

JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]


def read_rgb(path: Path):
    """A uint8 RGB array, or ValueError naming the file and the reason."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise ValueError(f"{path}: not a readable image ({e.__class__.__name__})") from e


@style_app.command("blocks")
def blocks(
    pair: Annotated[tuple[Path, Path], typer.Option("--pair", help="EMBROIDERY DESIGN images")],
    out: Annotated[Path, typer.Option(help="folder for blocks.json and blocks.png")],
    model: Annotated[str, typer.Option(help="base model")] = "mini",
    caption: Annotated[str, typer.Option(help="content prompt for the inversion")] = "",
    k: Annotated[int, typer.Option(min=1, help="style blocks to choose")] = 3,
    steps: Annotated[int, typer.Option(min=2, help="DDIM inversion steps")] = 10,
    segments: Annotated[int, typer.Option(min=1, help="timestep segments")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Rank a UNet's transformer blocks by how differently they see the two images; the least
    similar carry style. SDXL gets the paper's four blocks."""
    from craftlora.models.loader import load_components
    from craftlora.style.study import discover_blocks, write_blocks

    try:
        emb, des = read_rgb(pair[0]), read_rgb(pair[1])
        comp = load_components(model_source(model))
        size = comp.unet.config.sample_size * comp.vae_scale_factor
        if emb.shape != des.shape or emb.shape[0] % 8 or emb.shape[1] % 8:
            raise ValueError(f"{pair[0]}, {pair[1]}: need one size, a multiple of 8 "
                             f"(model native {size}); got {emb.shape[:2]}, {des.shape[:2]}")
        res = write_blocks(discover_blocks(comp, [(emb, des, caption)], k=k, steps=steps,
                                           segments=segments), out, f"{model}: {pair[0].name}")
    except (ValueError, OSError) as e:
        fail(e)
    if as_json:
        print_json(res)
    else:
        console.print(f"style blocks: {', '.join(res['blocks'])} (wrote {out / 'blocks.json'})")


@app.command("stylize", rich_help_panel=GENERATE)
def stylize_cmd(
    style: Annotated[Path, typer.Option("--style", help="style LoRA (pytorch_lora_weights."
                                                        "safetensors beside style_lora.json)")],
    out: Annotated[Path, typer.Option(help="output PNG")],
    model: Annotated[str, typer.Option(help="base model")] = "mini",
    image: Annotated[Path | None, typer.Option("--image", help="design to stylize")] = None,
    prompt: Annotated[str | None, typer.Option(help="text prompt (no design)")] = None,
    caption: Annotated[str, typer.Option(help="what the design shows")] = "a design",
    strength: Annotated[float, typer.Option(min=0.0, max=1.0, help="img2img strength")] = 0.6,
    steps: Annotated[int, typer.Option(min=1)] = 20,
    seed: Annotated[int, typer.Option()] = 0,
    colour_fix: Annotated[bool, typer.Option(help="LAB fix: a/b from the design")] = True,
    controlnet: Annotated[str | None, typer.Option(
        help="ControlNet folder or file ('mini' for the shipped one); with --image only")] = None,
    control: Annotated[str, typer.Option(help="ControlNet condition: canny or tile")] = "canny",
    control_scale: Annotated[float, typer.Option(min=0.0, help="ControlNet strength")] = 0.5,
    as_json: JsonOpt = False,
) -> None:
    """Apply only the style blocks' LoRA: img2img from a design (optionally steered by a canny
    or tile ControlNet), or text-to-image."""
    import json

    from PIL import Image

    from craftlora.models.loader import load_components
    from craftlora.style.stylize import load_style_lora, stylize, stylize_text
    from craftlora.train.style_mode import META_NAME, style_prompt

    if (image is None) == (prompt is None):
        fail("give exactly one of --image DESIGN or --prompt TEXT")
    if controlnet and image is None:
        fail("--controlnet steers a design: give --image DESIGN")
    try:
        meta_path = style.parent / META_NAME
        try:
            blocks_ = json.loads(meta_path.read_text())["style_blocks"]
        except (OSError, KeyError, json.JSONDecodeError) as e:
            raise ValueError(f"{meta_path}: no style-block list beside the LoRA ({e})") from e
        comp = load_components(model_source(model))
        modules = load_style_lora(comp.unet, style, blocks_)
        if image is not None:
            net = None
            if controlnet:
                from craftlora.generate.controlnet import load_controlnet

                net = load_controlnet(model_source(controlnet))
            arr = stylize(comp, [read_rgb(image)], [style_prompt(caption)], strength=strength,
                          steps=steps, seed=seed, colour_fix=colour_fix, controlnet=net,
                          control=control, control_scale=control_scale)[0]
        else:
            arr = stylize_text(comp, [style_prompt(prompt)], steps=steps, seed=seed)[0]
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(out)
    except (ValueError, OSError) as e:
        fail(e)
    res = {"out": str(out), "style_blocks": blocks_, "lora_modules": len(modules)}
    if as_json:
        print_json(res)
    else:
        console.print(f"wrote {out} (LoRA on {len(modules)} modules in {', '.join(blocks_)})")
