"""`craftlora demo lacquer`: the lacquer study's ablation on the glossy world."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import console, fail, print_json
from craftlora.cli.demo import demo_app


@demo_app.command("lacquer")
def lacquer(
    out: Annotated[Path, typer.Option(help="output folder (resumable)")] = Path("lacquer-out"),
    preset: Annotated[str, typer.Option(help="full (the study, sized for 25 CPU minutes) or "
                                             "tiny (a smoke test)")] = "full",
    as_json: Annotated[bool, typer.Option("--json", help="print lacquer.json")] = False,
) -> None:
    """{L_diff, + 0.3·L_perc} × {no reduction, reduction 0.7} × 3 seeds as one sweep, the
    specular mask against the true highlights; writes OUT/lacquer.json and OUT/sweep/."""
    from craftlora.demo.lacquer import preset as lacquer_preset
    from craftlora.demo.lacquer import run_lacquer

    try:
        res = run_lacquer(out, lacquer_preset(preset), None if as_json else console)
    except (ValueError, OSError) as e:
        fail(e)
    if as_json:
        print_json(res)
        return
    for name, row in res["variants"].items():
        cells = [f"{k} {v['mean']:.4g} [{v['ci_low']:.4g}, {v['ci_high']:.4g}]"
                 for k, v in row.items() if v]
        console.print(f"[bold]{name}[/]: " + "; ".join(cells))
    sp = res["specular"]
    console.print(f"specular mask IoU {sp['mask_iou']:.3f} (soft {sp['mask_soft_iou']:.3f}); "
                  f"restore error {sp['restore_error']:.4f} (glossy {sp['glossy_error']:.4f})")
    cf = res["contour_f1"]
    if "variants" in cf:
        console.print("contour F1 (" + cf["controlnet"] + "): " + "; ".join(
            f"{n} {v['mean']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"
            for n, v in cf["variants"].items() if v))
    else:
        console.print(f"contour F1: {cf['skipped']}")
    for claim, verdict in res["claims"].items():
        console.print(f"{claim}: {verdict}")
    console.print(f"FD in {res['feature_space']}; perceptual network "
                  f"{res['perceptual_network']}; LPIPS {res['lpips_network']}; "
                  f"wall {res['wall_s']:.0f} s → {out / 'lacquer.json'}")
