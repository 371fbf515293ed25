"""`craftlora metrics ...`: FD/KID between sets, attribute agreement, LPIPS diversity, contour
adherence, style transfer (HFRD, histogram, mask IoU, stitch style), and the feature extractors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from craftlora.cli.app import MEASURE, app, console, fail, print_json

metrics = typer.Typer(help="Image-set metrics: FD/KID, agreement, diversity, contours.",
                      no_args_is_help=True)
app.add_typer(metrics, name="metrics", rich_help_panel=MEASURE)

JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document")]
WsArg = Annotated[Path, typer.Argument(help="workspace folder")]


def _show(result: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        print_json(result)
        return
    console.print(f"[bold]{title}[/]")
    for k, v in result.items():
        if k != "skipped" and not isinstance(v, (list, dict)):
            console.print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}")
        elif isinstance(v, dict):
            console.print(f"  {k}: " + ", ".join(
                f"{a}={b:.4g}" if isinstance(b, float) else f"{a}={b}" for a, b in v.items()))
    for s in result.get("skipped", []):
        console.print(f"  [yellow]skipped[/] {s}")


def _extractor(name: str, checkpoint: Path | None, weights: Path | None) -> Any:
    from craftlora.metrics.features import get_extractor

    kw: dict[str, Any] = {}
    if name == "domain":
        kw["checkpoint"] = checkpoint
    elif weights is not None:
        kw["weights" if name != "clip" else "checkpoint"] = weights
    return get_extractor(name, **kw)


@metrics.command("extractors")
def extractors(as_json: JsonOpt = False) -> None:
    """List the feature extractor ids."""
    from craftlora.metrics.features import list_extractors

    ids = list_extractors()
    if as_json:
        print_json({"extractors": ids})
    else:
        console.print(", ".join(ids))


@metrics.command("fd")
def fd(
    ws: WsArg,
    set_a: Annotated[str, typer.Argument(help="first set: NAME or NAME:SPLIT")],
    set_b: Annotated[str, typer.Argument(help="second set: NAME or NAME:SPLIT")],
    extractor: Annotated[str, typer.Option(help="feature extractor id")] = "domain",
    judge: Annotated[Path | None, typer.Option(help="judge checkpoint (for 'domain')")] = None,
    weights: Annotated[Path | None, typer.Option(help="weights file for the extractor")] = None,
    limit: Annotated[int | None, typer.Option(help="seeded random subset per set")] = None,
    pr: Annotated[bool, typer.Option("--pr", help="also precision/recall (k=3)")] = False,
    seed: int = 0,
    as_json: JsonOpt = False,
) -> None:
    """Fréchet distance and KID between two catalog sets (N reported: FD is biased at small N)."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.metrics.sets import compare_sets

    try:
        ext = _extractor(extractor, judge, weights)
        with Workspace.open(ws) as w:
            result = compare_sets(w, set_a, set_b, ext, limit=limit, seed=seed, with_pr=pr)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        fail(e)
    _show(result, as_json, f"FD ({result['extractor']}) {set_a} vs {set_b}")


@metrics.command("agreement")
def agreement(
    ws: WsArg,
    set_name: Annotated[str, typer.Argument(help="set: NAME or NAME:SPLIT")],
    judge: Annotated[Path, typer.Option(help="judge checkpoint")],
    pair: Annotated[list[str] | None, typer.Option(help="A,B attribute pair; repeat")] = None,
    limit: Annotated[int | None, typer.Option(help="seeded random subset")] = None,
    as_json: JsonOpt = False,
) -> None:
    """How often the judge reads each image's intended attributes (per attribute, pairs, all)."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.metrics.features import get_extractor
    from craftlora.metrics.sets import set_agreement

    pairs = [tuple(p.split(",")) for p in pair] if pair else [("glaze", "type")]
    try:
        jd = get_extractor("domain", checkpoint=judge)
        with Workspace.open(ws) as w:
            result = set_agreement(w, set_name, jd, pairs=pairs, limit=limit)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        fail(e)
    _show(result, as_json, f"attribute agreement on {set_name}")


@metrics.command("clip-score")
def clip_score(
    ws: WsArg,
    set_name: Annotated[str, typer.Argument(help="set: NAME or NAME:SPLIT")],
    clip: Annotated[Path | None, typer.Option(
        help="transformers CLIP folder (default: the one `craftlora weights add clip` "
             "registered)")] = None,
    limit: Annotated[int | None, typer.Option(help="seeded random subset")] = None,
    as_json: JsonOpt = False,
) -> None:
    """CLIP score (100·cos clipped at 0, as torchmetrics) of each image against its prompt."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.metrics.clip_score import ClipScorer, set_clip_score

    try:
        scorer = ClipScorer(clip)
        with Workspace.open(ws) as w:
            result = set_clip_score(w, set_name, scorer, limit=limit)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        fail(e)
    _show(result, as_json, f"CLIP score of {set_name}")


@metrics.command("diversity")
def diversity(
    ws: WsArg,
    set_name: Annotated[str, typer.Argument(help="set: NAME or NAME:SPLIT")],
    net: Annotated[str, typer.Option(help="lpips-alex or lpips-vgg")] = "lpips-alex",
    group_by: Annotated[str, typer.Option(help="provenance key, or 'caption'")] = "prompt",
    weights: Annotated[Path | None, typer.Option(help="backbone weights file")] = None,
    as_json: JsonOpt = False,
) -> None:
    """LPIPS diversity: mean pairwise LPIPS within each prompt's outputs, averaged."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.metrics.features import get_extractor
    from craftlora.metrics.sets import set_diversity

    try:
        ext = get_extractor(net, **({"weights": weights} if weights else {}))
        with Workspace.open(ws) as w:
            result = set_diversity(w, set_name, ext, group_by=group_by)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        fail(e)
    _show(result, as_json, f"LPIPS diversity of {set_name}")


@metrics.command("contour")
def contour(
    sketch: Annotated[Path, typer.Argument(help="sketch or condition image")],
    image: Annotated[list[Path], typer.Argument(help="generated image(s)")],
    radius: Annotated[float, typer.Option(help="tolerance of the tolerant F1, px")] = 2.0,
    mode: Annotated[str, typer.Option(help="sketch edges: 'canny' (an edge map or photo) "
                                           "or 'strokes' (a line drawing)")] = "canny",
    as_json: JsonOpt = False,
) -> None:
    """Contour adherence: Canny on each image vs the sketch's edges (F1, tolerant F1, Chamfer)."""
    import numpy as np

    from craftlora.data.imageio import BadImageError, load_rgb
    from craftlora.metrics.contour import canny_edges, contour_adherence, sketch_mask

    if mode not in ("canny", "strokes"):
        fail(f"--mode must be 'canny' or 'strokes', not {mode!r}")
    try:
        s = np.asarray(load_rgb(sketch))
        ref = canny_edges(s) if mode == "canny" else sketch_mask(s)
        rows = []
        for p in image:
            im = load_rgb(p)
            if im.size != (s.shape[1], s.shape[0]):
                im = im.resize((s.shape[1], s.shape[0]))
            rows.append({"image": str(p), **contour_adherence(ref, im, radius)})
    except (BadImageError, ValueError) as e:
        fail(e)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("edge_f1", "tolerant_f1",
                                                             "chamfer")}
    result = {"sketch": str(sketch), "mode": mode, "n": len(rows), "mean": mean,
              "images": rows}
    _show(result, as_json, f"contour adherence to {sketch}")


@metrics.command("style")
def style_metrics(
    output: Annotated[Path, typer.Argument(help="stylized image")],
    design: Annotated[Path, typer.Argument(help="the design it was made from")],
    reference: Annotated[Path, typer.Argument(help="the style reference (embroidery)")],
    mask: Annotated[Path | None, typer.Option(help="the design's mask (stitch world)")] = None,
    style: Annotated[str | None, typer.Option(help="expected stitch style (needs --world)")]
    = None,
    world: Annotated[Path | None, typer.Option(help="a rendered stitch world (classifier)")]
    = None,
    lpips_net: Annotated[str, typer.Option(help="lpips-alex, lpips-vgg")] = "lpips-alex",
    as_json: JsonOpt = False,
) -> None:
    """HFRD (cutoff 0.25 × Nyquist), LPIPS and colour-histogram distance to the design; with
    --mask the mask IoU, with --style and --world the stitch classifier's agreement."""
    import numpy as np

    from craftlora.cli.style import read_rgb
    from craftlora.metrics.weights import MissingWeightsError
    from craftlora.mini.judge import JUDGES
    from craftlora.style.metrics import HF_CUTOFF, content_net, hfrd, hist_distance, mask_iou

    try:
        out_a, des_a, ref_a = read_rgb(output), read_rgb(design), read_rgb(reference)
        if out_a.shape != des_a.shape:
            raise ValueError(f"{output}: size {out_a.shape[:2]} differs from the design's "
                             f"{des_a.shape[:2]}")
        net = content_net(lpips_net, JUDGES / "judge-64.safetensors")
        res = {"hfrd": hfrd(out_a, ref_a), "hf_cutoff": HF_CUTOFF,
               "lpips_content": float(net.distance([out_a], [des_a])[0]),
               "content_network": net.id, "hist": hist_distance(out_a, des_a)}
        if mask is not None:
            res["mask_iou"] = mask_iou(out_a, des_a, read_rgb(mask)[..., 0] > 127)
        if style is not None:
            res["style_agreement"] = float(_stitch_classifier(world).predict([out_a])[0] == style)
    except (ValueError, OSError, MissingWeightsError) as e:
        fail(e)
    _show({k: float(v) if isinstance(v, np.floating) else v for k, v in res.items()}, as_json,
          "style metrics")


def _stitch_classifier(world: Path | None):
    from craftlora.cli.style import read_rgb
    from craftlora.mini.stitch.render import read_labels
    from craftlora.mini.stitch.styles import STYLES
    from craftlora.style.metrics import StyleClassifier

    if world is None:
        raise ValueError("--style needs --world (a rendered stitch world to fit the classifier)")
    ids = [r["id"] for r in read_labels(world) if r["split"] == "train"]
    return StyleClassifier([read_rgb(world / s / f"{i}.png") for s in STYLES for i in ids],
                           [s for s in STYLES for _ in ids])
