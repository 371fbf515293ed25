"""`craftlora plan` / `craftlora generate` end to end on a hand-made catalog and a tiny model."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from craftlora.catalog.store import Catalog
from craftlora.catalog.workspace import Workspace
from craftlora.cli.main import app
from craftlora.config import Attribute, WorkspaceConfig

COUNTS = {("white", "cup"): 1, ("ivory", "bowl"): 3, ("white", "bowl"): 30, ("ivory", "dish"): 7}


def _ws(tmp_path):
    cfg = WorkspaceConfig(
        name="t",
        caption_template="{glaze} {type}",
        attributes={
            "glaze": Attribute(values=["white", "ivory"]),
            "type": Attribute(values=["cup", "bowl", "dish"]),
        },
    )
    root = tmp_path / "ws"
    with Workspace.create(root, cfg) as ws:
        k = 0
        for (g, t), n in COUNTS.items():
            for _ in range(n):
                k += 1
                ws.catalog.add_image(
                    sha256=hashlib.sha256(str(k).encode()).hexdigest(),
                    path=f"i/{k}.png",
                    width=8,
                    height=8,
                    attributes={"glaze": g, "type": t},
                )
    (root / "prompt_phrases.toml").write_text('[function.type]\ncup = "for tea"\n')
    return root


def _model(tmp_path, gen_tiny_pipe):
    folder = tmp_path / "model"
    gen_tiny_pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def _small_plan(root, runner, total=6, steps=2):
    r = runner.invoke(
        app,
        [
            "plan",
            str(root),
            "--by",
            "glaze,type",
            "--total",
            str(total),
            "--split",
            "all",
            "--config",
            str(root / "planner.toml"),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    plan = root / "plan.toml"
    plan.write_text(
        plan.read_text()
        .replace("steps = 20", f"steps = {steps}")
        .replace("batch_size = 4", "batch_size = 3")
    )
    return json.loads(r.output), plan


def test_plan_and_generate_cli(tmp_path, gen_tiny_pipe):
    root = _ws(tmp_path)
    (root / "planner.toml").write_text(
        "[tiers]\nextreme_rare = 2\nvery_rare = 2\nmoderate_rare = 1\ntype_min = 0\nglaze_min = 0\n"
    )
    runner = CliRunner()
    summary, plan = _small_plan(root, runner)
    tiers = summary["sets"]["tiers"]["tiers"]
    assert tiers["extreme_rare"] == {"combinations": 1, "images": 2}
    assert tiers["very_rare"] == {"combinations": 1, "images": 2}
    assert tiers["moderate_rare"] == {"combinations": 1, "images": 1}
    assert summary["sets"]["tiers"]["images"] == 6
    assert "# prompt: white cup, for tea" in plan.read_text()
    again = runner.invoke(app, ["plan", str(root), "--json"])
    assert again.exit_code != 0 and "exists" in again.output
    model = _model(tmp_path, gen_tiny_pipe)
    args = ["generate", str(root), "--plan", str(plan), "--model", str(model), "--json"]
    r = runner.invoke(app, [*args, "--limit", "4"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["made"] == 4
    r = runner.invoke(app, args)
    out = json.loads(r.stdout)
    assert (out["made"], out["already_present"]) == (2, 4)
    with Catalog(root / "catalog.sqlite") as c:
        assert c.count(origin="synthetic", set_name="tiers") == 6
    bad = runner.invoke(app, ["generate", str(root), "--plan", str(tmp_path / "nope.toml")])
    assert bad.exit_code != 0 and "plan file not found" in " ".join(bad.output.split())


@pytest.mark.skipif(
    shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
    reason="torchrun not installed",
)
def test_two_cpu_processes_take_disjoint_slices(tmp_path, gen_tiny_pipe):
    root = _ws(tmp_path)
    (root / "planner.toml").write_text("[tiers]\ntype_min = 0\nglaze_min = 0\n")
    _, plan = _small_plan(root, CliRunner(), total=8, steps=1)
    model = _model(tmp_path, gen_tiny_pipe)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            torchrun,
            "--nproc_per_node",
            "2",
            "-m",
            "craftlora.cli.main",
            "generate",
            str(root),
            "--plan",
            str(plan),
            "--model",
            str(model),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    docs = [json.loads(d) for d in _json_docs(proc.stdout)]
    assert sorted(d["process"]["index"] for d in docs) == [0, 1]
    assert sorted(d["made"] for d in docs) == [4, 4]
    with Catalog(root / "catalog.sqlite") as c:
        recs = c.images(set_name="tiers")
    assert len(recs) == 8 and len({r.provenance["gen_id"] for r in recs}) == 8


def _json_docs(text):
    docs, depth, start = [], 0, None
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
            start = i if depth == 1 else start
        elif ch == "}":
            depth -= 1
            if depth == 0:
                docs.append(text[start : i + 1])
    return docs


def _shipped_mini() -> bool:
    from craftlora.generate.controlnet import MINI_CONTROLNET
    from craftlora.models.loader import MINI_BASE

    return (MINI_BASE / "model_index.json").is_file() and (
        MINI_CONTROLNET / "controlnet" / "config.json"
    ).is_file()


@pytest.mark.skipif(not _shipped_mini(), reason="the mini base or its ControlNet is not shipped")
def test_generate_sketch_with_the_shipped_mini_controlnet(tmp_path):
    """`craftlora generate WS --plan P --sketch FILE` on the mini base uses the shipped outline
    ControlNet without --controlnet and reports both contour figures."""
    import numpy as np
    from PIL import Image

    from craftlora.mini.outlines import mini_outline_triples

    root = _ws(tmp_path)
    (root / "planner.toml").write_text("[tiers]\ntype_min = 0\nglaze_min = 0\n")
    _, plan = _small_plan(root, CliRunner(), total=4, steps=2)
    edges = mini_outline_triples(1, seed=11, size=64)[0][0]
    Image.fromarray(np.where(edges, 0, 255).astype(np.uint8)).save(tmp_path / "vase.png")
    args = ["generate", str(root), "--plan", str(plan), "--sketch", str(tmp_path / "vase.png")]
    r = CliRunner().invoke(app, [*args, "--limit", "2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["made"] == 2 and out["contour_images"] == 2
    assert 0.0 <= out["contour_vessel_f1_mean"] <= 1.0
    with Catalog(root / "catalog.sqlite") as c:
        prov = [rec.provenance for rec in c.images(origin="synthetic")]
    assert len(prov) == 2 and all(p["controlnet"]["source"] == "mini" for p in prov)
    assert all(p["contour"]["radius"] == 2 and p["sketch"]["path"].endswith("vase.png")
               for p in prov)
    bad = CliRunner().invoke(app, [*args[:4], "--sketch", str(tmp_path / "nope.png")])
    assert bad.exit_code != 0 and "sketch file not found" in " ".join(bad.output.split())


def test_missing_lora_says_lora_dir_and_where_it_looked(tmp_path, gen_tiny_pipe):
    root = _ws(tmp_path)
    (root / "planner.toml").write_text("[tiers]\ntype_min = 0\nglaze_min = 0\n")
    runner = CliRunner()
    r = runner.invoke(app, ["plan", str(root), "--by", "glaze,type", "--total", "2", "--split",
                            "all", "--config", str(root / "planner.toml"), "--lora", "style:0.5"])
    assert r.exit_code == 0, r.output
    model = _model(tmp_path, gen_tiny_pipe)
    elsewhere = tmp_path / "runs"
    elsewhere.mkdir()
    r = runner.invoke(app, ["generate", str(root), "--plan", str(root / "plan.toml"), "--model",
                            str(model), "--lora-dir", str(elsewhere)], env={"COLUMNS": "400"})
    assert r.exit_code == 2
    err = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(err) == 1 and "'style'" in err[0] and "pass --lora-dir FOLDER" in err[0]
    assert str(elsewhere) in err[0] and str(root / "loras") in err[0]


def test_shell_paths_resolve_against_the_current_folder(tmp_path, gen_tiny_pipe, monkeypatch):
    """plan --model, generate --sketch / --controlnet as relative paths typed in another folder
    than the workspace; generate without --model uses the plan's model."""
    from diffusers import ControlNetModel
    from PIL import Image, ImageDraw

    root = _ws(tmp_path)
    shell = tmp_path / "shell"
    shell.mkdir()
    gen_tiny_pipe.save_pretrained(shell / "model", safe_serialization=True)
    cn = ControlNetModel.from_unet(gen_tiny_pipe.unet, conditioning_embedding_out_channels=(4, 8))
    cn.save_pretrained(shell / "cn", safe_serialization=True)
    sk = Image.new("RGB", (16, 16), "white")
    ImageDraw.Draw(sk).ellipse((3, 3, 12, 12), outline="black")
    sk.save(shell / "sketch.png")
    (shell / "planner.toml").write_text(
        "[tiers]\ntype_min = 0\nglaze_min = 0\n"
        # the tiny model is no preset family: its settings are given here
        '[generation]\nsampler = "Euler"\nsteps = 1\ncfg = 2.0\nclip_skip = 1\nbatch_size = 2\n'
    )
    monkeypatch.chdir(shell)
    runner = CliRunner()
    r = runner.invoke(app, ["plan", str(root), "--by", "glaze,type", "--total", "2", "--split",
                            "all", "--config", "planner.toml", "--model", "model", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert not any("from the model's preset" in n for n in summary["notes"])
    assert summary["generation"]["model"] == str(shell / "model")
    assert (summary["generation"]["sampler"], summary["generation"]["steps"]) == ("Euler", 1)
    text = (root / "plan.toml").read_text()
    assert f"model = {json.dumps(str(shell / 'model'))}" in text and "steps = 1" in text
    r = runner.invoke(app, ["generate", str(root), "--plan", str(root / "plan.toml"),
                            "--sketch", "sketch.png", "--controlnet", "cn", "--limit", "1",
                            "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["made"] == 1
    with Catalog(root / "catalog.sqlite") as c:
        (rec,) = c.images(origin="synthetic")
    sha = hashlib.sha256((shell / "sketch.png").read_bytes()).hexdigest()
    assert rec.provenance["sketch"] == {"path": str(shell / "sketch.png"), "sha256": sha}
    assert rec.provenance["model"] == str(shell / "model")


def test_generate_notes_a_model_of_another_family_than_the_plan(tmp_path):
    """The plan was made for the mini base; --model names an SD 1.5 folder (configs only: the
    note comes before any weight is read; the run then ends in one error line, as the folder
    holds no weights)."""
    root = _ws(tmp_path)
    (root / "planner.toml").write_text("[tiers]\ntype_min = 0\nglaze_min = 0\n")
    runner = CliRunner()
    assert runner.invoke(app, ["plan", str(root), "--split", "all", "--total", "2",
                               "--config", str(root / "planner.toml")]).exit_code == 0
    sd15 = tmp_path / "sd15"
    (sd15 / "unet").mkdir(parents=True)
    (sd15 / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    (sd15 / "unet" / "config.json").write_text('{"cross_attention_dim": 768}')
    r = runner.invoke(app, ["generate", str(root), "--plan", str(root / "plan.toml"),
                            "--model", str(sd15)], env={"COLUMNS": "400"})
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert lines[0].startswith("note: the plan's [generation] settings were chosen for mini;")
    assert "SD 1.5: DPM++ 2M Karras" in lines[0]
    errors = [x for x in lines if x.startswith("error: ")]
    assert r.exit_code == 2 and errors == lines[-1:]
