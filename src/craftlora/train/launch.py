"""Train a config on several CPU processes under ``accelerate launch`` (torch.distributed, gloo).

The processes' own output (model loading, per-step bars) goes to ``OUTPUT_DIR/train.log``; this
process shows one bar of the steps logged in ``log.jsonl`` and reads the result from ``run.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import tomli_w
from tqdm import tqdm

from craftlora.runtime.workers import advance
from craftlora.train.checkpoint import complete_checkpoints
from craftlora.train.config import TrainConfig
from craftlora.train.trainer import train


def train_on_cpus(cfg: TrainConfig, processes: int, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg`` (resuming from its latest complete checkpoint); its run summary.

    With ``processes`` > 1 dividing the batch, it runs as that many CPU processes, each with
    batch ``batch_size / processes``: the same samples and noise as one process with the whole
    batch, in about 1/processes of the time. The config is written to ``OUTPUT_DIR/train.toml``.
    """
    n = processes if processes > 1 and cfg.batch_size % processes == 0 else 1
    cfg = cfg.model_copy(update={"batch_size": cfg.batch_size // n})
    run_dir = Path(cfg.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    toml = run_dir / "train.toml"
    toml.write_text(tomli_w.dumps(cfg.model_dump(mode="json", exclude_none=True)),
                    encoding="utf-8")
    resume = "latest" if complete_checkpoints(run_dir / "checkpoints") else None
    res = (launch_cpu(toml, run_dir, n, resume, cfg.max_steps, progress) if n > 1
           else train(cfg, resume=resume))
    return {**res, "output_dir": str(run_dir), "config": str(toml)}


def launch_cpu(toml: Path, run_dir: Path, n: int, resume: str | None, total: int,
            progress: bool = True) -> dict[str, Any]:
    """``accelerate launch`` the trainer of ``toml`` on ``n`` CPU processes; its run summary.

    ``run_dir`` is the config's ``output_dir``.
    """
    exe = Path(sys.executable).with_name("accelerate")
    cmd = [str(exe) if exe.is_file() else "accelerate", "launch", "--multi_gpu",
           "--num_processes", str(n), "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", "0",  # 0: accelerate picks a free port
           "-m", "craftlora.cli.train", "train", str(toml)]
    if resume:
        cmd += ["--resume", resume]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1"}
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = run_dir / "train.log"
    bar = tqdm(total=total, desc="LoRA", unit="step", disable=not progress)
    try:
        with open(log_file, "ab") as log, subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT
        ) as proc:
            while proc.poll() is None:
                time.sleep(1.0)
                advance(bar, logged_step(run_dir / "log.jsonl"))
    finally:
        advance(bar, logged_step(run_dir / "log.jsonl"))
        bar.close()
    run = run_dir / "run.json"
    res = json.loads(run.read_text(encoding="utf-8")) if run.is_file() else {}
    if proc.returncode != 0 or res.get("status") != "finished":
        raise RuntimeError(
            f"LoRA training failed (exit {proc.returncode}, status {res.get('status')!r}): "
            f"{res.get('message', '')} — see {run} and {log_file}:\n"
            f"{_tail(log_file)}\nRerun to resume from the last checkpoint")
    return res


def logged_step(log: Path) -> int:
    """The last step in a trainer's ``log.jsonl`` (0 before the first line)."""
    try:
        with open(log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().decode("utf-8", "replace").splitlines()
        for line in reversed(lines):
            try:
                return int(json.loads(line)["step"])
            except (ValueError, KeyError, TypeError):
                continue
    except OSError:
        pass
    return 0


def _tail(path: Path, n: int = 8) -> str:
    """The trainer's own ``error:`` lines from a log, else its last ``n`` non-empty lines."""
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    lines = [x.strip() for x in text.replace("\r", "\n").splitlines() if x.strip()]
    errors = list(dict.fromkeys(x[x.index("error:"):] for x in lines if "error:" in x))
    return "\n".join("  " + x for x in (errors or lines)[-n:])


def last_loss(log: Path) -> float | None:
    if not log.is_file():
        return None
    rows = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines() if x.strip()]
    tail = rows[-10:]
    return sum(r["loss"] for r in tail) / len(tail) if tail else None
