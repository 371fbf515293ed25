"""Plan sizing by a share of the training set with a margin for QC losses (`plan --share`)."""

from __future__ import annotations

import json

import pytest
from glaze_type_world import build
from typer.testing import CliRunner

from craftlora.classify.mixing import synthetic_count
from craftlora.cli.main import app
from craftlora.generate.plan_model import PlanError, load_plan
from craftlora.generate.plan_write import share_counts, write_plan


def test_share_counts_are_the_mixers_count_plus_the_margin():
    # 5 % and 10 % of real + synthetic, as the study's 570 and 2,500 beside 25,877 real images
    assert share_counts(4181, 0.05, 0.2) == (220, 266)  # round(220 × 1.2) + 2 spare
    assert share_counts(4181, 0.10, 0.0) == (465, 467)
    for n, r in ((25877, 0.10), (36, 0.05), (1, 0.5), (0, 0.3)):
        assert share_counts(n, r, 0.1)[0] == synthetic_count(n, r, None)
    need, _ = share_counts(25877, 0.10, 0.2)
    assert need / (25877 + need) == pytest.approx(0.10, abs=1e-4)
    with pytest.raises(PlanError, match="share"):
        share_counts(10, 1.0, 0.2)
    with pytest.raises(PlanError, match="margin"):
        share_counts(10, 0.1, -0.1)


def test_plan_cli_sizes_the_dual_sets_by_share(tmp_path):
    ws = build(tmp_path / "ws", n_train=1)  # 6 real train images, every combination rare
    target = tmp_path / "plan.toml"
    r = CliRunner().invoke(app, ["plan", str(ws.root), "--strategy", "dual", "--share", "0.3",
                                 "--share", "0.5", "--margin", "0.2", "--out", str(target),
                                 "--json"])
    ws.close()
    assert r.exit_code == 0, r.output
    sets = json.loads(r.output)["sets"]
    # 6 real → 3 make 30 %, 6 make 50 %; + 20 % + 2 spare → 6 and 9 to generate
    assert (sets["minimal"]["needed_for_share"], sets["minimal"]["images"]) == (3, 6)
    assert (sets["comprehensive"]["needed_for_share"], sets["comprehensive"]["images"]) == (6, 9)
    assert [s.total for s in load_plan(target).sets] == [6, 9]


def test_write_plan_checks_its_shares_and_keeps_an_existing_plan(glaze_type_ws, tmp_path):
    ws = glaze_type_ws
    target = tmp_path / "p.toml"
    plan, summary = write_plan(ws, target, shares=[0.10], margin=0.0)
    assert plan.sets[0].total == summary["sets"]["tiers"]["images"] == 6  # 4 + 2 spare
    before = target.read_bytes()
    with pytest.raises(PlanError, match="exists"):
        write_plan(ws, target, shares=[0.05])
    with pytest.raises(PlanError, match="takes 2 share"):
        write_plan(ws, tmp_path / "q.toml", strategy="dual", shares=[0.05])
    with pytest.raises(PlanError, match="not both"):
        write_plan(ws, tmp_path / "q.toml", shares=[0.05], total=10)
    assert target.read_bytes() == before
