"""``craftlora train CONFIG.toml [--resume latest] [--check]``: LoRA or full fine-tuning."""

from __future__ import annotations

from pathlib import Path

import typer

from craftlora.cli.app import app, console, fail, print_json

EXAMPLES = ("examples/lora-mini.toml (the bundled mini base) or "
            "examples/lora-porcelain.toml (SD 1.5)")


PATH_KEYS = ("output_dir", "data.workspace", "data.cache_dir", "model_config_dir",
             "model_tokenizer_dir", "loss.perceptual_weights")


def _parse_set(items: list[str]) -> dict[str, object]:
    """``--set`` values as TOML; relative paths given here resolve against the shell's folder."""
    import tomllib

    from craftlora.models.loader import MINI_NAMES, looks_like_path

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--set {item!r}: expected KEY=VALUE (TOML value), e.g. optim.lr=1e-4")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value
        v = out[key.strip()]
        is_path = key.strip() in PATH_KEYS or (key.strip() == "model" and isinstance(v, str)
                                               and v not in MINI_NAMES and looks_like_path(v))
        if is_path and isinstance(v, str) and not Path(v).expanduser().is_absolute():
            out[key.strip()] = str(Path.cwd() / v)
    return out


def _next_step(cfg, result: dict) -> str:
    """The generate command that uses what this run wrote."""
    if cfg.mode != "lora":
        return (f"next: craftlora plan WS, then craftlora generate WS --plan PLAN "
                f"--model {result['outputs'].get('model', '')}")
    return (f"next: craftlora generate {cfg.data.workspace} --plan PLAN --model {cfg.model} "
            f"--lora-dir {cfg.output_dir}  (PLAN from `craftlora plan`; its prompts name this LoRA "
            f"<lora:{cfg.name}:1>)")


@app.command(rich_help_panel="Train")
def train(
    config: Path = typer.Argument(  # noqa: B008
        ..., help=f"train config (TOML), relative to the current folder; see {EXAMPLES}"),
    resume: str = typer.Option(None, "--resume", help="'latest' or a checkpoint folder"),
    set_: list[str] = typer.Option([], "--set", help="override a config key: optim.lr=1e-4"),  # noqa: B008
    check: bool = typer.Option(False, "--check", help="only check the config, the model source "
                               "and the data (no weights loaded), print a report"),
    json_out: bool = typer.Option(False, "--json", help="print the run summary as JSON"),
) -> None:
    """Train a LoRA (or the full UNet) on a workspace's train split; resumable, kill-safe."""
    from craftlora.models.loader import ModelSourceError
    from craftlora.train.checkpoint import CheckpointError
    from craftlora.train.config import TrainConfigError, load_train_config
    from craftlora.train.data import TrainDataError
    from craftlora.train.preflight import PreflightError, preflight
    from craftlora.train.trainer import TrainingStopped
    from craftlora.train.trainer import train as run_training

    try:
        cfg = load_train_config(config.absolute(), **_parse_set(set_))
    except TrainConfigError as e:
        fail(str(e))
        return
    if check:
        _report(preflight(cfg, resume=resume), json_out)
        return
    try:
        result = run_training(cfg, resume=resume)
    except TrainingStopped as e:
        if json_out:
            print_json(e.result)
        fail(str(e), code=3 if e.result["status"] == "stopped_nonfinite" else 130)
        return
    except TrainConfigError as e:  # a setting this machine cannot run
        fail(f"{config}: {e}")
        return
    except (ModelSourceError, TrainDataError, PreflightError, CheckpointError) as e:
        fail(str(e))
        return
    except OSError as e:  # disk full, read-only: the file and the reason in one line
        fail(e)
        return
    except (ValueError, RuntimeError) as e:
        fail(str(e))
        return
    if json_out:
        print_json(result)
        return
    console.print(f"[green]done[/] {result['step']} steps in {result['wall_s']:.1f} s "
                  f"({result['timings']['steps_per_s']:.2f} steps/s)")
    for k, v in result["outputs"].items():
        console.print(f"  {k}: {v}", soft_wrap=True, highlight=False)
    console.print(_next_step(cfg, result), soft_wrap=True, highlight=False, markup=False)


@app.command("buckets", rich_help_panel="Train")
def buckets(
    config: Path = typer.Argument(..., help="train config (TOML)"),  # noqa: B008
    set_: list[str] = typer.Option([], "--set", help="override a config key: data.resolution=768"),  # noqa: B008
    json_out: bool = typer.Option(False, "--json", help="print the plan as JSON"),
) -> None:
    """Show the aspect-ratio buckets a config's images would train in (no weights loaded)."""
    from rich.table import Table

    from craftlora.train.buckets import plan_buckets
    from craftlora.train.config import TrainConfigError, load_train_config
    from craftlora.train.data import TrainDataError, collect_examples

    try:
        cfg = load_train_config(config.absolute(), **_parse_set(set_))
        plan = plan_buckets(collect_examples(cfg.data)[0], cfg.data)
    except (TrainConfigError, TrainDataError, OSError) as e:
        fail(str(e))
        return
    if json_out:
        print_json({"enabled": cfg.data.buckets, **plan})
        return
    table = Table("bucket (w × h)", "images")
    for b in plan["buckets"].values():
        table.add_row(f"{b['resolution'][0]} × {b['resolution'][1]}", str(b["count"]))
    console.print(table)
    console.print(f"{plan['n_images']} images, {len(plan['candidates'])} candidate buckets, "
                  f"mean aspect-ratio error {plan['mean_img_ar_error']:.3f}, "
                  f"{len(plan['enlarged'])} enlarged"
                  + ("" if cfg.data.buckets else "; buckets are off in this config "
                     "(set [data] buckets = true)"), highlight=False)


def _report(pre, json_out: bool) -> None:
    """Print the pre-flight checks; exit 2 when one failed."""
    if json_out:
        print_json(pre.to_dict())
    else:
        for c in pre.checks:
            mark = "[green]ok[/]  " if c.ok else "[red]fail[/]"
            console.print(f"{mark} {c.name:<7}", end="")
            console.print(f" {c.detail}", markup=False, highlight=False, soft_wrap=True)
    if not pre.ok:
        first = next(c for c in pre.checks if not c.ok)
        fail(first.detail)


if __name__ == "__main__":  # `python -m craftlora.cli.train train CONFIG` (used by tests)
    app()
