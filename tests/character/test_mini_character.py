"""The mini character: detectors exact on true renders, distractors and drift caught, tags
read back; the QC text-overlay and distortion checks on watermarked and warped renders."""

from __future__ import annotations

import itertools

import numpy as np

from craftlora.character.prompts import AXES
from craftlora.config import QCConfig
from craftlora.mini.character.detect import identity_features, tag_matches
from craftlora.mini.character.faults import distort, watermark
from craftlora.mini.character.mascot import DISTRACTORS, FEATURES, Scene, off_model, render
from craftlora.qc.checks import build_reference, check_distortion, check_text_overlay
from craftlora.qc.measure import measure

SCENES = [Scene(*c) for i, c in enumerate(itertools.product(*AXES.values())) if i % 60 == 0]


def test_detectors_read_every_feature_and_tag_on_true_renders():
    hits = total = 0
    for i, s in enumerate(SCENES):
        got = identity_features(render(s, seed=i))
        assert all(got.values()), (s, got)
        h, t = tag_matches(render(s, seed=i), s.tags())
        hits, total = hits + h, total + t
    assert total == 3 * len(SCENES) and hits / total >= 0.97


def test_distractors_and_drift_miss_features():
    for d in DISTRACTORS:
        got = identity_features(render(Scene(), d, seed=1))
        assert sum(got.values()) <= 2, (d, got)
    rng = np.random.default_rng(0)
    for k in range(10):
        got = identity_features(render(SCENES[k], off_model(rng), seed=k))
        assert not all(got.values())
    blank = np.full((64, 64, 3), 90, np.uint8)
    assert not any(identity_features(blank).values())
    assert set(identity_features(blank)) == set(FEATURES)


def test_overlay_and_distortion_checks_flag_faults_and_pass_true_renders():
    cfg = QCConfig()
    ref_imgs = [render(s, seed=100 + i) for i, s in enumerate(SCENES)]
    stats = [measure(a) for a in ref_imgs]
    ref = build_reference(list(range(len(stats))), stats, cfg, "fp")
    rng = np.random.default_rng(1)
    fresh = [render(s, seed=500 + i) for i, s in enumerate(SCENES)]
    assert all(check_text_overlay(measure(a), ref).passed for a in fresh)
    assert sum(check_distortion(measure(a), ref).passed for a in fresh) >= len(fresh) - 1
    marked = [check_text_overlay(measure(watermark(a, rng)), ref) for a in fresh]
    assert all(not o.passed for o in marked) and "watermark" in marked[0].detail
    warped = [check_distortion(measure(distort(a, rng)), ref) for a in fresh]
    assert sum(not o.passed for o in warped) >= 0.9 * len(warped)
