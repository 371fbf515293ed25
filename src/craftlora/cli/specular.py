"""`craftlora specular`: reduce specular highlights, I·(1 − α·M_spec), and score the reduction
against a glossy world's exact truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from craftlora.cli.app import DATA, app, console, fail, print_json


@app.command(rich_help_panel=DATA)
def specular(
    paths: Annotated[list[Path], typer.Argument(help="a glossy world (`craftlora mini glossy`), "
                                                     "a folder of PNGs, or image files")],
    out: Annotated[Path | None, typer.Option(help="write the reduced images here")] = None,
    figure: Annotated[Path | None, typer.Option(help="image files: PNG of original | mask | "
                                                     "corrected")] = None,
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="attenuation α")] = 0.7,
    limit: Annotated[int | None, typer.Option(min=1, help="score the first N images")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document")] = False,
) -> None:
    """Specular highlight reduction I·(1 − α·M_spec), the lacquer study's preprocessing. On a
    glossy world, score the mask against the true highlights (IoU) and the restored image against
    the highlight-free render (mean absolute error in [0, 1]); with --out, write reduced copies.
    Image files get their mask's mean and, with --out, reduced copies."""
    from PIL import Image

    from craftlora.data.specular import SpecularConfig, reduce_specular
    from craftlora.mini.glossy.truth import is_glossy_world, score_world

    cfg = SpecularConfig(alpha=alpha)
    if len(paths) > 1 or not paths[0].is_dir():
        _files(paths, out, figure, cfg, as_json)
        return
    src = paths[0]
    result: dict = {"src": str(src), "alpha": alpha}
    if is_glossy_world(src):
        result["score"] = score_world(src, cfg, limit)
    folder = src / "images" if is_glossy_world(src) else src
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        written, bad = 0, []
        for p in sorted(folder.glob("*.png"))[:limit]:
            try:
                with Image.open(p, formats=["PNG"]) as im:
                    reduce_specular(im.convert("RGB"), cfg).save(out / p.name)
                written += 1
            except (OSError, ValueError) as e:
                bad.append(f"{p}: {e}")
        result.update(written=written, refused=bad)
    if as_json:
        print_json(result)
        return
    s = result.get("score")
    if s:
        console.print(f"{s['images']} image(s), α = {alpha}: mask IoU {s['mask_iou']:.3f} "
                      f"(soft {s['mask_soft_iou']:.3f}); "
                      f"error to the clean render {s['glossy_error']:.4f} → "
                      f"{s['restore_error']:.4f} (inside highlights "
                      f"{s['glossy_error_highlights']:.3f} → {s['restore_error_highlights']:.3f})")
    else:
        console.print(f"{src} has no truth/ folder: nothing to score")
    for line in result.get("refused", []):
        console.print(f"[red]refused[/] {line}")
    if out is not None:
        console.print(f"wrote {result['written']} reduced image(s) to {out}")


def _files(images: list[Path], out: Path | None, figure: Path | None, cfg: Any,
           as_json: bool) -> None:
    """Reduce each image file; one error line at the end names the files that failed."""
    from craftlora.data.atomic import atomic_write_bytes
    from craftlora.data.imageio import BadImageError, load_rgb
    from craftlora.data.specular import example_figure, reduce_specular
    from craftlora.data.specular import specular_mask as mask_of

    loaded, rows = [], []
    for p in images:
        try:
            im = load_rgb(p)
        except BadImageError as e:
            rows.append({"image": str(p), "error": e.reason})
            continue
        loaded.append(im)
        row = {"image": str(p), "mask_mean": float(mask_of(im, cfg).mean())}
        if out is not None:
            import io

            buf = io.BytesIO()
            reduce_specular(im, cfg).save(buf, format="PNG")
            target = out / (p.stem + ".png")
            atomic_write_bytes(target, buf.getvalue())
            row["output"] = str(target)
        rows.append(row)
    if figure is not None and loaded:
        example_figure(loaded[:6], str(figure), cfg)
    result = {"alpha": cfg.alpha, "images": rows, "figure": str(figure) if figure else None}
    if as_json:
        print_json(result)
    else:
        for r in rows:
            console.print(r)
    bad = [r for r in rows if "error" in r]
    if bad:
        fail(f"{len(bad)} of {len(rows)} images not processed, e.g. {bad[0]['image']}: "
             f"{bad[0]['error']}", code=1)
