"""The README's loop on the shipped samples, through the CLI only, one process per command.

init --from → ingest → split → captions → train --check → train (a tiny LoRA) → plan →
generate → qc → classify train (a judge) → compare → experiment; each step's ``--json``
document is checked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"

LORA_TOML = """
name = "samples"
model = "mini"
output_dir = "runs/lora"
max_steps = 4
batch_size = 4
checkpoint_every = 4
[lora]
rank = 2
alpha = 2.0
text_encoder = true
[data]
workspace = "ws"
resolution = 64
[optim]
lr = 1e-3
"""

PLANNER_TOML = """
[generation]
steps = 2
batch_size = 8
"""

EXPERIMENT_TOML = """
workspace = "ws"
seeds = [0]
bootstrap = 100
confusion_pairs = []
[train]
backbone = "mobilenet_v3_small"
pretrained = "none"
image_size = 32
epochs = 1
patience = 1
batch_size = 16
task_weights = { dynasty = 1.0, glaze = 1.0, type = 1.0 }
[[configs]]
name = "real-only"
[[configs]]
name = "real+syn"
synthetic = "comprehensive"
ratio = 0.3
when_short = "all_passed"
"""


def craftlora(cwd: Path, *args: str) -> dict:
    """Run ``craftlora ARGS --json`` in ``cwd`` as a user would; its JSON document."""
    env = {**os.environ, "CRAFTLORA_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "craftlora.cli.main", *args, "--json"], cwd=cwd,
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, f"craftlora {' '.join(args)}: {r.stderr[-2000:]}"
    return json.loads(r.stdout)


@pytest.mark.slow
def test_the_readme_loop_on_the_samples(tmp_path: Path) -> None:
    shutil.copytree(SAMPLES, tmp_path / "samples")
    (tmp_path / "lora.toml").write_text(LORA_TOML)
    (tmp_path / "planner.toml").write_text(PLANNER_TOML)
    (tmp_path / "experiment.toml").write_text(EXPERIMENT_TOML)
    run = lambda *a: craftlora(tmp_path, *a)  # noqa: E731

    init = run("init", "ws", "--from", "samples/craftlora.toml")
    assert set(init["attributes"]) == {"dynasty", "glaze", "type"}

    ing = run("ingest", "ws", "samples/porcelain")
    assert ing["ingested"] == 34  # every good sample; the z-inbox files are refused by name
    assert len(ing["rejected"]) >= 5 and ing["label_problems"]
    assert all(r["path"].startswith("z-inbox/") and r["reason"] for r in ing["rejected"])

    split = run("split", "ws", "--seed", "0")
    assert sum(split["counts"].values()) == 34 and split["counts"]["train"] > 0

    caps = run("captions", "ws")
    assert caps["written"] == 34

    check = run("train", "--check", "lora.toml")
    data = {c["name"]: c for c in check["checks"]}["data"]
    assert check["ok"] and f"{split['counts']['train']} images" in data["detail"]

    tr = run("train", "lora.toml")
    lora = Path(tr["outputs"]["lora_kohya"])
    assert tr["status"] == "finished" and tr["step"] == 4 and lora.is_file()

    plan = run("plan", "ws", "--strategy", "dual", "--share", "0.3", "--share", "0.5",
               "--lora", "samples", "--config", "planner.toml")
    sets = plan["sets"]
    assert set(sets) == {"minimal", "comprehensive"} and sets["comprehensive"]["images"] > 0
    assert plan["generation"]["sampler"] == "DDIM"  # the mini base's preset

    gen = run("generate", "ws", "--plan", "ws/plan.toml", "--set", "comprehensive",
              "--lora-dir", str(lora.parent))
    assert gen["made"] == sets["comprehensive"]["images"] and gen["set"] == "comprehensive"

    qc = run("qc", "ws", "--set", "comprehensive")
    assert qc["n"] == gen["made"] and 0 <= qc["passed_all"] <= qc["n"]

    judge = run("classify", "train", "ws", "judge.safetensors", "--backbone",
                "mobilenet_v3_small", "--image-size", "32", "--epochs", "1")
    assert judge["produced_by"] and (tmp_path / "judge.safetensors").is_file()
    cmp_ = run("compare", "ws", "--model", "mini", "--lora", tr["outputs"]["lora_diffusers"],
               "--judge", "judge.safetensors", "--prompts", "4")
    assert cmp_["prompts"] == 4 and {"base", "lora", "judge_ceiling"} <= set(cmp_)
    assert cmp_["base"]["fd_domain"] > 0 and 0 <= cmp_["lora"]["combo_agreement"] <= 1

    exp = run("experiment", "run", "experiment.toml", "--out", "exp")
    assert set(exp["configs"]) == {"real-only", "real+syn"}
    assert (tmp_path / "exp" / "results.json").is_file()
