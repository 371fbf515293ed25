"""Run every configuration × seed on the same val/test images; resumable.

Each run writes ``runs/<config>/seed-<s>/result.json`` atomically when it finishes; a rerun
skips every run whose result exists. Images are decoded once for all runs (and kept in
``cache/`` between invocations). With ``workers > 1`` the pending runs are spread over that many
spawned processes, each on one torch thread, sharing the decoded images; a run's result does
not depend on which process trained it. At the end ``results.json`` and ``report.html`` are
written.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from craftlora.catalog.store import ImageRecord
from craftlora.catalog.workspace import Workspace
from craftlora.classify.cache import ImageCache, build_cache
from craftlora.classify.dataset import Labelled, label_records
from craftlora.classify.evaluate import combo_accuracy_by_frequency, evaluate_scores
from craftlora.classify.mixing import (
    MixingError,
    mix,
    real_splits,
    synthetic_count,
    synthetic_pool,
)
from craftlora.classify.train import score_logits, train_classifier
from craftlora.data.atomic import atomic_write_json
from craftlora.experiment.config import ExperimentConfig, MixConfig, PrepareConfig
from craftlora.experiment.summary import summarise
from craftlora.runtime.workers import first_error, pool


def prepare(p: PrepareConfig, root: Path, progress: bool = True) -> list[dict[str, Any]]:
    """Create the mini-kiln workspace and render the oracle / wrong sets, when missing."""
    notes: list[dict[str, Any]] = []
    if p.mini_kiln and not (root / "craftlora.toml").is_file():
        import tempfile

        from craftlora.catalog.ingest import ingest
        from craftlora.catalog.split import assign_splits
        from craftlora.mini.kiln import workspace_config
        from craftlora.mini.render import render_kiln

        with tempfile.TemporaryDirectory(prefix="craftlora-mini-kiln-") as tmp:
            labels = render_kiln(Path(tmp), n=p.n, seed=p.seed, size=p.size, progress=progress)
            ws = Workspace.create(root, workspace_config())
            rep = ingest(ws, Path(tmp), labels=labels, progress=progress)
            split = assign_splits(ws, seed=p.seed)
            ws.close()
        notes.append({"built": str(root), "ingested": rep.ingested, "split": split["counts"]})
    if p.render_sets:
        from craftlora.mini.oracle import add_render_set

        with Workspace.open(root) as ws:
            for s in p.render_sets:
                notes.append(add_render_set(ws, s.name, s.n, seed=s.seed, size=p.size,
                                            wrong=s.wrong_labels, progress=progress))
    return notes


def _train_counts(train: Labelled, tasks: Mapping[str, Sequence[str]]) -> dict[str, list[int]]:
    return {t: np.bincount(train.labels[t][train.labels[t] >= 0],
                           minlength=len(n)).tolist() for t, n in tasks.items()}


def short_mixes(configs: Sequence[MixConfig], pools: Mapping[str, list[ImageRecord]],
                n_real_train: int) -> list[str]:
    """One sentence per ``when_short="all_passed"`` mix whose pool is smaller than asked."""
    out = []
    for mc in configs:
        if mc.synthetic is None or mc.when_short != "all_passed":
            continue
        need = synthetic_count(n_real_train, mc.ratio, mc.count)
        have = len(pools[mc.synthetic])
        if have < need:
            share = f"{mc.ratio:.0%} of the training set" if mc.ratio is not None else "asked"
            out.append(f"{mc.name}: only {have} images of set {mc.synthetic!r} passed QC, "
                       f"fewer than the {need} that make {share}; all {have} are used")
    return out


def run_one(
    cfg: ExperimentConfig, mc: MixConfig, seed: int, *, tasks: Mapping[str, Sequence[str]],
    cache: ImageCache, real_train: list[ImageRecord], pools: Mapping[str, list[ImageRecord]],
    val: Labelled, test: Labelled, real_combo_counts: Mapping[tuple[str, ...], int],
    progress: bool,
) -> dict[str, Any]:
    """Train and test one configuration with one seed; return its result record."""
    if mc.synthetic is None:
        records, info = list(real_train), {"n_real": len(real_train), "n_synthetic": 0,
                                           "synthetic_share": 0.0}
    else:
        records, info = mix(real_train, pools[mc.synthetic], ratio=mc.ratio, count=mc.count,
                            seed=seed, when_short=mc.when_short)
    info["synthetic_set"] = mc.synthetic
    cpu0 = time.process_time()
    train = label_records(records, tasks, cached=set(cache.ids))
    res = train_classifier(cfg.train, tasks, cache, train, val, seed=seed, progress=progress,
                           desc=f"{mc.name} seed {seed}")
    scores = score_logits(res.model, cache.take(test.ids), cfg.train.eval_batch_size)
    metrics = evaluate_scores(test.labels, scores, tasks)
    preds = {t: s.argmax(1) for t, s in scores.items()}
    return {
        "config": mc.name,
        "seed": seed,
        "mix": info,
        "skipped_train_images": train.skipped[:50],
        "produced_by": f"{cfg.train.backbone} ({res.model.weights_source})",
        "best_epoch": res.best_epoch,
        "best_val_mean_f1_macro": res.best_score,
        "stopped_early": res.stopped_early,
        "seconds": res.seconds,
        "cpu_seconds": time.process_time() - cpu0,
        "train_images_per_s": res.images_seen / max(res.seconds, 1e-9),
        "history": res.history,
        "class_weights": res.class_weights,
        "test": metrics,
        "test_pred": {t: p.tolist() for t, p in preds.items()},
        "combo_buckets": combo_accuracy_by_frequency(
            test.combos, test.labels, preds, real_combo_counts, cfg.rare_edges),
    }


#: What every run needs besides its config and seed (set in the parent, or in each worker).
_STATE: dict[str, Any] = {}


def _init_worker(shared: dict[str, Any]) -> None:
    """A pool process: one torch thread, and the experiment's shared inputs."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    _STATE.update(shared)


def _train_job(mc: MixConfig, seed: int, path: Path, progress: bool = False) -> str:
    """Train one configuration × seed from ``_STATE``; write its result.json atomically."""
    st = _STATE
    result = run_one(st["cfg"], mc, seed, tasks=st["tasks"], cache=st["cache"],
                     real_train=st["real_train"], pools=st["pools"], val=st["val"],
                     test=st["test"], real_combo_counts=st["real_combo_counts"],
                     progress=progress)
    atomic_write_json(path, result)
    return f"{mc.name}/seed-{seed}"


def _run_pool(pending: Sequence[tuple[MixConfig, int, Path]], shared: dict[str, Any],
              workers: int, bar: Any) -> None:
    """Train the pending runs in ``workers`` spawned processes; the first error is raised."""
    def done(f: Any) -> None:
        bar.set_postfix(run=f.result())
        bar.update(1)

    with pool(workers, start="spawn", initializer=_init_worker, initargs=(shared,)) as ex:
        first_error({ex.submit(_train_job, mc, seed, path) for mc, seed, path in pending}, done)


def run_experiment(cfg: ExperimentConfig, config_dir: Path, out: Path, *,
                   progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the experiment into ``out``; return results.json's content."""
    t0 = time.perf_counter()
    root = (Path(config_dir) / cfg.workspace).resolve()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    notes = prepare(cfg.prepare, root, progress)
    with Workspace.open(root) as ws:
        names = cfg.train.tasks or list(ws.config.attributes)
        unknown = [t for t in names if t not in ws.config.attributes]
        if unknown:
            raise MixingError(f"tasks {unknown} are not attributes of {root}")
        tasks = {t: list(ws.config.attributes[t].values) for t in names}
        splits = real_splits(ws.catalog)
        pools, pool_notes = {}, {}
        for mc in cfg.configs:
            if mc.synthetic and mc.synthetic not in pools:
                pools[mc.synthetic], pool_notes[mc.synthetic] = synthetic_pool(
                    ws.catalog, mc.synthetic, require_qc=mc.require_qc,
                    require_review=mc.require_review)
        every = splits.train + splits.val + splits.test + [r for p in pools.values() for r in p]
        cache = build_cache(ws.root, every, cfg.train.image_size, cache_dir=out / "cache",
                            progress=progress)
    cached = set(cache.ids)
    val = label_records(splits.val, tasks, cached=cached)
    test = label_records(splits.test, tasks, cached=cached)
    real_train = label_records(splits.train, tasks, cached=cached)
    real_combo_counts = Counter(real_train.combos)
    atomic_write_json(out / "config.resolved.json", {
        "config": cfg.model_dump(mode="json"), "workspace": str(root), "tasks": tasks,
        "val_images": len(val), "test_images": len(test), "real_train_images": len(real_train),
        "pools": pool_notes, "prepare": notes, "decode_failures": cache.failed,
        "skipped": {"val": val.skipped, "test": test.skipped},
    })

    # seed by seed: a stopped experiment has every configuration for its first seeds
    jobs = [(mc, s, out / "runs" / mc.name / f"seed-{s}" / "result.json")
            for s in cfg.seeds for mc in cfg.configs]
    pending = [j for j in jobs if not j[2].is_file()]
    shared = {"cfg": cfg, "tasks": tasks, "cache": cache, "real_train": splits.train,
              "pools": pools, "val": val, "test": test, "real_combo_counts": real_combo_counts}
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(pending), desc="experiment",
               disable=not progress)
    if cfg.workers > 1 and len(pending) > 1:
        _run_pool(pending, shared, min(cfg.workers, len(pending)), bar)
    else:
        _STATE.update(shared)
        try:
            for mc, seed, path in pending:
                bar.set_postfix(run=f"{mc.name}/seed-{seed}")
                _train_job(mc, seed, path, progress)
                bar.update(1)
        finally:
            _STATE.clear()
    bar.close()
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for mc, seed, path in jobs:
        runs.setdefault(mc.name, {})[seed] = json.loads(path.read_text())
    done = len(pending)

    body = summarise(
        runs, tasks=tasks, test_labels=test.labels,
        train_counts=_train_counts(real_train, tasks), baseline=cfg.baseline_name(),
        confusion_pairs=cfg.confusion_pairs, minority_fraction=cfg.minority_fraction,
        n_boot=cfg.bootstrap, progress=progress,
    )
    results = {
        "workspace": str(root),
        "tasks": tasks,
        "seeds": cfg.seeds,
        "test_images": len(test),
        "val_images": len(val),
        "real_train_images": len(real_train),
        "produced_by": sorted({p for c in body["configs"].values() for p in c["produced_by"]}),
        **body,
        "notes": short_mixes(cfg.configs, pools, len(splits.train)),
        "runs_trained_now": done,
        "wall_s": time.perf_counter() - t0,
    }
    atomic_write_json(out / "results.json", results)
    from craftlora.experiment.report import write_report

    write_report(out, results, runs)
    return results
