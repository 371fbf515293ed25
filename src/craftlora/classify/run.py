"""Train and test one classifier on a workspace (real train split, optionally + a mix)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from craftlora.catalog.workspace import Workspace
from craftlora.classify.cache import build_cache
from craftlora.classify.config import TrainConfig
from craftlora.classify.dataset import label_records
from craftlora.classify.evaluate import evaluate_scores, mean_f1_macro
from craftlora.classify.mixing import mix, real_splits, synthetic_pool
from craftlora.classify.train import score_logits, train_classifier
from craftlora.models.classifier import MultiTaskClassifier, save_classifier


def load_train_config(path: Path | None, **overrides: Any) -> TrainConfig:
    """A TrainConfig from a TOML file (or defaults) with non-None overrides applied."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ValueError(f"{path}: cannot read training config: {e}") from e
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as e:
        raise ValueError(f"{path or 'training config'}: {e}") from e


def train_on_workspace(
    ws: Workspace,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    synthetic: str | None = None,
    ratio: float | None = None,
    count: int | None = None,
    out: Path | None = None,
    progress: bool = True,
) -> tuple[MultiTaskClassifier, dict[str, Any]]:
    """Train on the real train split (+ synthetic mix), select on val, report on test."""
    names = cfg.tasks or list(ws.config.attributes)
    tasks = {t: list(ws.config.attributes[t].values) for t in names}
    splits = real_splits(ws.catalog)
    records, info = list(splits.train), {"n_real": len(splits.train), "n_synthetic": 0}
    note = None
    if synthetic:
        pool, note = synthetic_pool(ws.catalog, synthetic)
        records, info = mix(splits.train, pool, ratio=ratio, count=count, seed=seed)
    cache = build_cache(ws.root, records + splits.val + splits.test, cfg.image_size,
                        progress=progress)
    cached = set(cache.ids)
    train = label_records(records, tasks, cached=cached)
    val = label_records(splits.val, tasks, cached=cached)
    test = label_records(splits.test, tasks, cached=cached)
    res = train_classifier(cfg, tasks, cache, train, val, seed=seed, progress=progress)
    metrics = evaluate_scores(test.labels, score_logits(res.model, cache.take(test.ids),
                                                        cfg.eval_batch_size), tasks)
    report = {
        "produced_by": f"{cfg.backbone} ({res.model.weights_source})",
        "seed": seed, "mix": info, "qc": note, "best_epoch": res.best_epoch,
        "val_mean_f1_macro": res.best_score, "test_mean_f1_macro": mean_f1_macro(metrics),
        "test": metrics, "history": res.history,
        "decode_failures": cache.failed, "skipped": train.skipped + val.skipped + test.skipped,
    }
    if out is not None:
        save_classifier(out, res.model, {"role": "classifier", "workspace": str(ws.root),
                                         "train_config": cfg.model_dump(mode="json"),
                                         "seed": seed, "mix": info,
                                         "test_mean_f1_macro": report["test_mean_f1_macro"]})
    return res.model, report
