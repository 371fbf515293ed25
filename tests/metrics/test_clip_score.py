"""CLIP score against a hand computation on a tiny random transformers CLIP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from weight_standins import save_tiny_clip

from craftlora.metrics.clip_score import ClipScorer
from craftlora.metrics.weights import MissingWeightsError, add_weights, weights_fingerprint

TEXTS = ["a blue bowl", "a white vase", "red lacquer box", "a blue vase", "a red bowl",
         "white box"]


def _images(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(n)]


def _by_hand(folder: Path, images: list[np.ndarray], texts: list[str]) -> np.ndarray:
    """32² images (the model's size: no resize), CLIP-normalised; the towers' pooled outputs
    through the projections; 100·cos clipped at 0."""
    from transformers import CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(folder).eval()
    tok = CLIPTokenizer.from_pretrained(folder)
    mean = np.array([0.48145466, 0.4578275, 0.40821073])
    std = np.array([0.26862954, 0.26130258, 0.27577711])
    out = []
    for img, text in zip(images, texts, strict=True):
        x = (img / 255.0 - mean) / std
        pix = torch.tensor(x, dtype=torch.float32).permute(2, 0, 1)[None]
        ids = torch.tensor([tok(text)["input_ids"]])
        with torch.no_grad():
            v = model.vision_model(pixel_values=pix).pooler_output
            v = v @ model.visual_projection.weight.T
            t = model.text_model(input_ids=ids).pooler_output @ model.text_projection.weight.T
        v, t = v[0].numpy().astype(np.float64), t[0].numpy().astype(np.float64)
        out.append(max(0.0, 100 * v @ t / np.linalg.norm(v) / np.linalg.norm(t)))
    return np.array(out)


def test_clip_score_matches_the_hand_computation(tmp_path: Path) -> None:
    folder = save_tiny_clip(tmp_path / "clip")
    images = _images(len(TEXTS))
    scorer = ClipScorer(folder, batch_size=4)  # two batches, padded text lengths differ
    got = scorer.scores(images, TEXTS)
    want = _by_hand(folder, images, TEXTS)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert (got > 1).all()
    r = scorer.score(images, TEXTS)
    assert r["clip_score"] == pytest.approx(want.mean(), abs=1e-4) and r["n"] == len(TEXTS)
    assert r["clip_weights_sha256"] == weights_fingerprint(folder)


def test_negative_cosines_score_zero(tmp_path: Path) -> None:
    from transformers import CLIPModel

    folder = save_tiny_clip(tmp_path / "clip")
    model = CLIPModel.from_pretrained(folder)
    model.text_projection.weight.data.neg_()  # every cosine changes sign
    model.save_pretrained(folder, safe_serialization=True)
    images = _images(len(TEXTS))
    assert (ClipScorer(folder).scores(images, TEXTS) == 0).all()
    assert (_by_hand(folder, images, TEXTS) == 0).all()


def test_clip_score_uses_the_registered_model_or_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="craftlora weights add clip PATH"):
        ClipScorer()
    folder = save_tiny_clip(tmp_path / "clip")
    add_weights("clip", folder)
    assert ClipScorer().path == folder.resolve()
    with pytest.raises(ValueError, match="one text per image: 2 images, 1 texts"):
        ClipScorer().scores(_images(2), ["a bowl"])


def test_compare_reports_clip_score_only_when_a_clip_is_registered(tmp_path: Path,
                                                                   glaze_type_ws) -> None:
    import json

    from typer.testing import CliRunner

    from craftlora.cli.main import app
    from craftlora.models.tiny import TinySpec, save_tiny_pipeline

    model = save_tiny_pipeline(TinySpec(image_size=16), tmp_path / "model" / "pipe")
    args = ["compare", str(glaze_type_ws.root), "--model", str(model), "--prompts", "3",
            "--features", "pixels", "--steps", "2", "--size", "16", "--sampler", "DDIM",
            "--cfg", "1.75", "--clip-skip", "1"]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "clip_score" not in json.loads((tmp_path / "a" / "compare.json").read_text())
    assert "no CLIP model is registered" in (tmp_path / "a" / "compare.html").read_text()

    folder = add_weights("clip", save_tiny_clip(tmp_path / "clip"))["path"]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "b" / "compare.json").read_text())
    prompts = json.loads((tmp_path / "b" / "prompts.json").read_text())
    images = [np.asarray(Image.open(tmp_path / "b" / "base" / f"{p['i']:05d}.png")
                         .convert("RGB")) for p in prompts]
    want = ClipScorer(folder).score(images, [p["prompt"] for p in prompts])["clip_score"]
    assert res["clip_score"]["per_row"] == {"base": pytest.approx(want)}
    assert res["clip_score"]["clip_weights_sha256"] == weights_fingerprint(Path(folder))
    assert "CLIP score (text–image" in (tmp_path / "b" / "compare.html").read_text()


def test_metrics_clip_score_scores_a_set_against_its_captions(tmp_path: Path,
                                                              glaze_type_ws) -> None:
    import json

    from typer.testing import CliRunner

    from craftlora.cli.main import app
    from craftlora.metrics.sets import load_images, select

    ws = glaze_type_ws
    set_name = sorted(ws.catalog.sets())[0]
    recs = select(ws, f"{set_name}:test")
    args = ["metrics", "clip-score", str(ws.root), f"{set_name}:test", "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "craftlora weights add clip PATH" in r.output
    ws.catalog.set_captions({rec.id: f"a {rec.attributes['glaze']} {rec.attributes['type']}"
                             for rec in recs[1:]})  # the first image keeps no text
    folder = add_weights("clip", save_tiny_clip(tmp_path / "clip"))["path"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)  # transformers' loading bars go to stderr
    recs = select(ws, f"{set_name}:test")
    _, arrays, _ = load_images(ws, recs[1:])
    want = ClipScorer(folder).score(arrays, [rec.caption for rec in recs[1:]])["clip_score"]
    assert res["clip_score"] == pytest.approx(want) and res["n"] == len(recs) - 1
    assert res["skipped"] == [f"{recs[0].path}: no prompt or caption"]
