"""``craftlora train CONFIG.toml [--resume latest]``: LoRA or full fine-tuning of a diffusion model."""  # noqa: E501

from __future__ import annotations

from pathlib import Path

import typer

from craftlora.cli.app import app, console, fail, print_json


def _parse_set(items: list[str]) -> dict[str, object]:
    import tomllib

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--set {item!r}: expected KEY=VALUE (TOML value), e.g. optim.lr=1e-4")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value
    return out


@app.command(rich_help_panel="Train")
def train(
    config: Path = typer.Argument(..., help="train config (TOML); see examples/train/"),  # noqa: B008
    resume: str = typer.Option(None, "--resume", help="'latest' or a checkpoint folder"),
    set_: list[str] = typer.Option([], "--set", help="override a config key: optim.lr=1e-4"),  # noqa: B008
    json_out: bool = typer.Option(False, "--json", help="print the run summary as JSON"),
) -> None:
    """Train a LoRA (or the full UNet) on a workspace's train split; resumable, kill-safe."""
    from craftlora.train.config import TrainConfigError, load_train_config
    from craftlora.train.trainer import TrainingStopped
    from craftlora.train.trainer import train as run_training

    try:
        cfg = load_train_config(config, **_parse_set(set_))
    except TrainConfigError as e:
        fail(str(e))
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
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        fail(str(e))
        return
    if json_out:
        print_json(result)
    else:
        console.print(f"[green]done[/] {result['step']} steps in {result['wall_s']:.1f} s "
                      f"({result['timings']['steps_per_s']:.2f} steps/s)")
        for k, v in result["outputs"].items():
            console.print(f"  {k}: {v}")


if __name__ == "__main__":  # `python -m craftlora.cli.train train CONFIG` (used by tests)
    app()
