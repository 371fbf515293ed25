"""`craftlora classify ...`: train/test a classifier, train the judge, render oracle sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from craftlora.cli.app import MEASURE, app, console, fail, print_json

classify_app = typer.Typer(help="Multi-task classifier, judge and oracle sets.",
                           no_args_is_help=True)
app.add_typer(classify_app, name="classify", rich_help_panel=MEASURE)


@classify_app.command("train")
def train_cmd(
    ws: Annotated[Path, typer.Argument(help="workspace folder")],
    out: Annotated[Path, typer.Argument(help="checkpoint to write (.safetensors)")],
    config: Annotated[Path | None, typer.Option(help="training config TOML")] = None,
    backbone: Annotated[str | None, typer.Option(help="e.g. mobilenet_v3_small")] = None,
    image_size: Annotated[int | None, typer.Option()] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int, typer.Option()] = 0,
    synthetic: Annotated[str | None, typer.Option(help="synthetic set to mix in")] = None,
    ratio: Annotated[float | None, typer.Option(help="synthetic share of the training set")] = None,
    count: Annotated[int | None, typer.Option(help="number of synthetic images")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Train on WS's real train split (+ a synthetic mix); writes OUT and OUT's .json report."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.classify.run import load_train_config, train_on_workspace
    from craftlora.data.atomic import atomic_write_json

    try:
        cfg = load_train_config(config, backbone=backbone, image_size=image_size, epochs=epochs)
        with Workspace.open(ws) as w:
            _, report = train_on_workspace(w, cfg, seed=seed, synthetic=synthetic, ratio=ratio,
                                           count=count, out=out, progress=not as_json)
    except (ValueError, RuntimeError, OSError) as e:
        fail(e)
    atomic_write_json(out.with_suffix(".json"), report)
    if as_json:
        print_json(report)
        return
    console.print(f"wrote {out} ({report['produced_by']}); test mean F1-macro "
                  f"{report['test_mean_f1_macro']:.3f}")
    for t, m in report["test"].items():
        console.print(f"  {t:10s} F1-macro {m['f1_macro']:.3f}  accuracy {m['accuracy']:.3f}  "
                      f"top-5 {m['top5']:.3f}")


@classify_app.command("judge")
def judge_cmd(
    out: Annotated[Path, typer.Argument(help="judge checkpoint to write (.safetensors)")],
    n_per_combo: Annotated[int, typer.Option(help="training renders per valid combination")] = 24,
    seed: Annotated[int, typer.Option()] = 0,
    epochs: Annotated[int | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Train the mini world's judge on balanced fresh renders; report held-out accuracy."""
    from craftlora.data.atomic import atomic_write_json
    from craftlora.mini.judge import judge_config, train_judge

    cfg = judge_config()
    if epochs is not None:
        cfg = cfg.model_copy(update={"epochs": epochs})
    try:
        report = train_judge(out, n_per_combo=n_per_combo, seed=seed, config=cfg,
                             progress=not as_json)
    except (ValueError, RuntimeError, OSError) as e:
        fail(e)
    atomic_write_json(out.with_suffix(".json"), report)
    if as_json:
        print_json(report)
        return
    h = report["heldout"]
    console.print(f"wrote {out} ({report['backbone']}, {report['weights_source']}); held-out "
                  f"exact-combination accuracy {h['combo_accuracy']:.3f}, glaze+type "
                  f"{h['glaze_type_accuracy']:.3f}")
    for t, a in h["task_accuracy"].items():
        console.print(f"  {t:10s} accuracy {a:.3f}")


@classify_app.command("oracle")
def oracle_cmd(
    ws: Annotated[Path, typer.Argument(help="mini-kiln workspace")],
    n: Annotated[int, typer.Option(help="images to render")] = 500,
    set_name: Annotated[str, typer.Option("--set", help="set name")] = "oracle",
    seed: Annotated[int, typer.Option()] = 0,
    wrong_labels: Annotated[bool, typer.Option(help="negative control: shift glaze and type "
                                                    "labels")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Render fresh true mini-kiln images (or wrong-label ones) as a synthetic set."""
    from craftlora.catalog.workspace import Workspace
    from craftlora.mini.oracle import add_render_set

    try:
        with Workspace.open(ws) as w:
            report = add_render_set(w, set_name, n, seed=seed, wrong=wrong_labels,
                                    progress=not as_json)
    except (ValueError, RuntimeError, OSError) as e:
        fail(e)
    if as_json:
        print_json(report)
    else:
        console.print(f"set {set_name!r}: {report['images']} images")
