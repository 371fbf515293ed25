"""The shipped judge: used only when built for this renderer, and still reads fresh renders."""

from __future__ import annotations

import json
import shutil

import numpy as np

from craftlora.demo.build_judge import ASSETS, renderer_fingerprint, shipped_judge
from craftlora.metrics.agreement import attribute_agreement
from craftlora.metrics.judge import Judge
from craftlora.mini.kiln import valid_combinations
from craftlora.mini.vessel import render_vessel


def test_a_judge_built_for_another_renderer_is_not_used(tmp_path):
    shutil.copyfile(ASSETS / "judge-64.safetensors", tmp_path / "judge-64.safetensors")
    rep = json.loads((ASSETS / "judge-64.json").read_text(encoding="utf-8"))
    (tmp_path / "judge-64.json").write_text(json.dumps({**rep, "renderer": "0" * 64}))
    path, why = shipped_judge(64, tmp_path)
    assert path is None and "another version of the mini-kiln renderer" in why


def test_a_missing_or_unreadable_report_means_no_shipped_judge(tmp_path):
    assert shipped_judge(64, tmp_path)[0] is None
    shutil.copyfile(ASSETS / "judge-64.safetensors", tmp_path / "judge-64.safetensors")
    (tmp_path / "judge-64.json").write_text("{not json")
    path, why = shipped_judge(64, tmp_path)
    assert path is None and "judge-64.json" in why


def test_the_shipped_judge_is_current_and_reads_fresh_renders():
    path, why = shipped_judge(64)
    assert path is not None, why
    assert json.loads(path.with_suffix(".json").read_text())["renderer"] == renderer_fingerprint()
    combos = valid_combinations()
    images = [render_vessel(c, np.random.default_rng([99, i]), size=64)[0]
              for i, c in enumerate(combos)]
    agr = attribute_agreement(Judge(path).predict(images), combos, pairs=[("glaze", "type")])
    assert agr["glaze_type"] >= 0.85 and agr["type"] >= 0.88 and agr["glaze"] >= 0.93
