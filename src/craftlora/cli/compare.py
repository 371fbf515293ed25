"""`craftlora compare WS --model M --lora A.safetensors`: base vs LoRA on the same prompts and
seeds (FD in a judge's feature space, attribute agreement, the judge's ceiling)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import MEASURE, app, console, fail, print_json


def _judge(judge: str, size: int) -> Path:
    """``mini``: the mini world's shipped judge for this image size; else a checkpoint path."""
    if judge != "mini":
        return Path(judge).resolve()
    from craftlora.mini.judge import shipped_judge

    path, why = shipped_judge(size)
    if path is None:
        fail(f"--judge mini: {why}; give a classifier checkpoint instead")
    return path


@app.command(rich_help_panel=MEASURE)
def compare(
    ws: Annotated[Path, typer.Argument(help="workspace folder (prompts from its test split)")],
    model: Annotated[str, typer.Option(help="base model: mini, a diffusers folder or a "
                                            ".safetensors file")],
    lora: Annotated[Path | None, typer.Option(help="LoRA .safetensors (diffusers format)")]
    = None,
    vs_lora: Annotated[Path | None, typer.Option(help="a second LoRA, compared on the same "
                                                      "prompts and seeds")] = None,
    prompts: Annotated[int, typer.Option(min=1, help="prompts (one image each per model)")]
    = 320,
    judge: Annotated[str, typer.Option(help="'mini' (the mini world's judge) or a classifier "
                                            "checkpoint .safetensors")] = "mini",
    out: Annotated[Path | None, typer.Option(help="output folder (default WS/compare)")] = None,
    weight: Annotated[float, typer.Option(help="LoRA weight")] = 1.0,
    sampler: Annotated[str, typer.Option(help="A1111 sampler name")] = "DDIM",
    steps: Annotated[int, typer.Option(min=1, help="sampling steps")] = 20,
    cfg: Annotated[float, typer.Option(help="classifier-free guidance scale")] = 1.75,
    size: Annotated[int, typer.Option(min=8, help="image size in pixels")] = 64,
    workers: Annotated[int, typer.Option(min=1, help="generation processes")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Generate base (and LoRA) images on the same prompts and seeds, then measure them.

    Writes OUT/compare.json and OUT/compare.html (a grid); a rerun reuses the images on disk.
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
    ws = ws.resolve()
    target = (out or ws / "compare").resolve()
    try:
        s = CompareSettings(model=model, loras=loras, weight=weight, prompts=prompts,
                            sampler=sampler, steps=steps, cfg=cfg, size=size)
        res = run_compare(ws, target, s, _judge(judge, size), workers=workers,
                          progress=not as_json)
    except (WorkspaceError, ModelSourceError, MissingWeightsError, OSError, ValueError) as e:
        fail(e)
    if as_json:
        print_json(res)
        return
    from rich.table import Table

    t = Table(title=f"same {res['prompts']} prompts and seeds; FD in "
                    f"{res['judge']['feature_space']}")
    for col in ("images from", "FD", "glaze+type", "exact", "N"):
        t.add_column(col)
    for row in ("base", *loras, "judge_ceiling", "decoder_ceiling"):
        if row in res:
            r = res[row]
            gt = r["glaze_type_agreement"]
            t.add_row(row.replace("_", " "), f"{r['fd_domain']:.4g}",
                      "–" if gt is None else f"{gt:.3f}", f"{r['combo_agreement']:.3f}",
                      str(r["n"]))
    console.print(t)
    console.print(f"wrote {target / 'compare.json'} and {target / 'compare.html'}")
