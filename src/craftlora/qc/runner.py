"""Run the automatic QC checks over one catalog set and record a result per image and check.

A rerun only runs what is new: a (image, check) pair is skipped when the catalog already holds
its result under the same configuration fingerprint (thresholds, the reference set's content,
the judge's weights). Results are written chunk by chunk, so a killed run keeps what it did.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from craftlora.catalog.store import Catalog, ImageRecord, QCResult
from craftlora.catalog.workspace import Workspace
from craftlora.config import QCConfig
from craftlora.data.imageio import BadImageError, load_rgb
from craftlora.metrics.features import PixelExtractor
from craftlora.metrics.judge import Judge
from craftlora.qc import checks as C
from craftlora.qc.decoder import matched_config
from craftlora.qc.measure import ImageStats, measure

CHUNK = 256


@dataclass
class _Decoded:
    stats: dict[int, ImageStats]
    outlier: dict[int, np.ndarray]
    domain: dict[int, np.ndarray]
    predicted: dict[int, dict[str, str]]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _open_judge(judge: Path | str | Judge | None) -> Judge | None:
    if judge is None or isinstance(judge, Judge):
        return judge
    return Judge(judge)


def reference_records(catalog: Catalog, cfg: QCConfig, exclude: set[int]) -> list[ImageRecord]:
    """Real images in the reference split (all real images when none is assigned)."""
    recs = catalog.images(origin="real", split=cfg.reference_split)
    if not recs:
        recs = catalog.images(origin="real")
    return [r for r in recs if r.id not in exclude]


def _fingerprints(cfg: QCConfig, max_pixels: int, ref_fp: str, judge: Judge | None,
                  outlier_id: str) -> dict[str, str]:
    j = judge.weights_sha256 if judge is not None else None
    parts: dict[str, Any] = {
        "decode": [cfg.expected_size, max_pixels],
        "blank": [cfg.flat_std, cfg.black_level, cfg.white_level, cfg.analysis_size],
        "exposure": [cfg.range_quantiles, cfg.range_margin, cfg.analysis_size, ref_fp],
        "contrast": [cfg.range_quantiles, cfg.range_margin, cfg.analysis_size, ref_fp],
        "sharpness": [cfg.sharpness_quantile, cfg.sharpness_factor, cfg.analysis_size, ref_fp],
        "duplicate": [cfg.hash_size, cfg.duplicate_hamming, cfg.duplicate_rms,
                      cfg.analysis_size],
        "memorisation": [cfg.hash_size, cfg.memorisation_hamming, cfg.memorisation_rms,
                         cfg.analysis_size, ref_fp,
                         j, cfg.memorisation_feature_ratio if j else None],
        "agreement": [cfg.min_agreement, j],
        "outlier": [cfg.outlier_k, cfg.outlier_quantile, cfg.outlier_factor, outlier_id, ref_fp],
        "text_overlay": [cfg.overlay_factor, cfg.overlay_floor, cfg.analysis_size, ref_fp],
        "distortion": [cfg.distortion_factor, cfg.analysis_size, ref_fp],
    }
    return {name: f"{name}:{_digest(p)}" for name, p in parts.items()}


def _chunks(items: list[ImageRecord], n: int) -> Iterator[list[ImageRecord]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


class _Reader:
    """Decode records and measure them; features for the outlier space and the judge."""

    def __init__(self, ws: Workspace, cfg: QCConfig, judge: Judge | None, outlier_space: str):
        self.ws, self.cfg, self.judge, self.space = ws, cfg, judge, outlier_space
        self.pixels = PixelExtractor() if outlier_space == "pixels" else None

    def decode(self, rec: ImageRecord, expect_size: bool = True
               ) -> tuple[np.ndarray | None, C.Outcome]:
        try:
            im = load_rgb(self.ws.resolve(rec.path), max_pixels=self.ws.config.ingest.max_pixels)
        except (BadImageError, OSError) as e:
            return None, C.Outcome(False, None, getattr(e, "reason", str(e)))
        w, h = im.size
        if (w, h) != (rec.width, rec.height):
            return None, C.Outcome(False, None, f"decoded size {w}x{h} differs from the "
                                                f"catalog's {rec.width}x{rec.height}")
        if (expect_size and self.cfg.expected_size is not None
                and (w, h) != tuple(self.cfg.expected_size)):
            ew, eh = self.cfg.expected_size
            return None, C.Outcome(False, None, f"size {w}x{h}, expected {ew}x{eh}")
        return np.asarray(im), C.Outcome(True, float(w * h), "")

    def read(self, recs: list[ImageRecord], want_features: bool, expect_size: bool = True
             ) -> tuple[_Decoded, dict[int, C.Outcome]]:
        out = _Decoded({}, {}, {}, {})
        decode: dict[int, C.Outcome] = {}
        arrays: dict[int, np.ndarray] = {}
        for rec in recs:
            arr, outcome = self.decode(rec, expect_size)
            decode[rec.id] = outcome
            if arr is not None:
                out.stats[rec.id] = measure(arr, analysis_size=self.cfg.analysis_size,
                                            hash_size=self.cfg.hash_size)
                arrays[rec.id] = arr
        ids = list(arrays)
        if want_features and ids:
            batch = [arrays[i] for i in ids]
            if self.judge is not None:
                feats, preds = self.judge.read(batch)
                out.domain = dict(zip(ids, feats, strict=True))
                out.predicted = dict(zip(ids, preds, strict=True))
            if self.pixels is not None:
                out.outlier = dict(zip(ids, self.pixels.features(batch), strict=True))
            else:
                out.outlier = out.domain
        return out, decode


def run_qc(ws: Workspace, set_name: str, *, judge: Path | str | Judge | None = None,
           config: QCConfig | None = None, sharpness_reference: str | None = None,
           progress: bool = False) -> dict[str, Any]:
    """Run every applicable check on ``set_name``; return a summary (pass rates by reason).

    ``sharpness_reference`` overrides the config's (``"real"`` or ``"decoder"``).
    """
    cfg = config or ws.config.qc
    if sharpness_reference is not None:
        cfg = QCConfig.model_validate({**cfg.model_dump(),
                                       "sharpness_reference": sharpness_reference})
    cat = ws.catalog
    records = cat.images(set_name=set_name)
    if not records:
        raise C.QCError(f"set {set_name!r} has no images (known sets: {sorted(cat.sets())})")
    limit: dict[str, Any] = {"decoder_matched": False, "factor": cfg.sharpness_factor}
    if cfg.sharpness_reference == "decoder":
        cfg, limit = matched_config(ws, records, cfg)
    jd = _open_judge(judge)
    space = cfg.outlier_features
    if space == "auto":
        space = "domain" if jd is not None else "pixels"
    if space == "domain" and jd is None:
        raise C.QCError("qc.outlier_features = 'domain' needs a judge checkpoint (--judge)")
    outlier_id = (f"{jd.id}:{jd.weights_sha256[:16]}" if space == "domain" else
                  PixelExtractor().id)
    active = [c for c in C.CHECKS if (c not in C.JUDGE_CHECKS or jd is not None)
              and (c not in C.OPTIONAL_CHECKS or c in cfg.optional_checks)]
    set_ids = {r.id for r in records}
    refs = reference_records(cat, cfg, exclude=set_ids)
    ref_fp = _digest([cfg.reference_split, [(r.id, r.sha256) for r in refs]])
    fps = _fingerprints(cfg, ws.config.ingest.max_pixels, ref_fp, jd, outlier_id)

    existing = cat.qc_results(sorted(set_ids))
    done = {(i, r.check_name) for i, rows in existing.items() for r in rows
            if r.config == fps.get(r.check_name)}
    bad_decode = {i for i, rows in existing.items() for r in rows
                  if r.check_name == "decode" and r.config == fps["decode"] and not r.passed}
    todo = {c: {i for i in set_ids if (i, c) not in done and (c == "decode" or
                                                            i not in bad_decode)}
            for c in active}
    skipped: dict[str, str] = {c: "no judge given" for c in C.JUDGE_CHECKS if jd is None}
    if "agreement" in todo:
        no_labels = {r.id for r in records if not _intended(r, jd)}
        todo["agreement"] -= no_labels
        if no_labels:
            skipped["agreement"] = (f"{len(no_labels)} images have no intended attributes "
                                    "the judge knows")

    reader = _Reader(ws, cfg, jd, space)
    ref = None
    if any(todo.get(c) for c in C.REFERENCE_CHECKS):
        ref = _build_reference(reader, refs, cfg, ref_fp, progress)

    need_all = bool(todo.get("duplicate"))
    to_read = [r for r in records if r.id not in bad_decode
               and (need_all or any(r.id in t for t in todo.values()))]
    want_features = bool(todo.get("outlier") or todo.get("agreement")
                         or (jd is not None and todo.get("memorisation")))
    seen_ids: list[int] = []
    seen_stats: list[ImageStats] = []
    counts = dict.fromkeys(active, 0)
    results: list[QCResult] = []

    def put(i: int, check: str, o: C.Outcome) -> None:
        if i in todo[check]:
            results.append(QCResult(i, check, o.passed, o.score, o.detail, fps[check]))
            counts[check] += 1

    bar = tqdm(total=len(to_read), desc=f"qc {set_name}", unit="img", disable=not progress)
    for chunk in _chunks(to_read, CHUNK):
        data, decoded = reader.read(chunk, want_features)
        ok_ids = [i for i in (r.id for r in chunk) if i in data.stats]
        for i, o in decoded.items():
            put(i, "decode", o)
        seen_ids += ok_ids
        seen_stats += [data.stats[i] for i in ok_ids]
        if todo.get("duplicate") and ok_ids:
            new = set(ok_ids) & todo["duplicate"]
            for i, o in C.check_duplicates(seen_ids, seen_stats, cfg, only=new).items():
                put(i, "duplicate", o)
        by_id = {r.id: r for r in chunk}
        nearest: dict[int, tuple[float, int]] = {}
        if ref is not None and ref.domain is not None and data.domain:
            did = [i for i in ok_ids if i in todo["memorisation"] and i in data.domain]
            if did:
                d, j = C.knn(np.stack([data.domain[i] for i in did]), ref.domain, 1)
                nearest = {i: (float(d[n, 0]), int(j[n, 0])) for n, i in enumerate(did)}
        if ref is not None and ref.features is not None:
            oid = [i for i in ok_ids if i in todo["outlier"]]
            if oid:
                outs = C.check_outliers(np.stack([data.outlier[i] for i in oid]), ref, cfg)
                for i, o in zip(oid, outs, strict=True):
                    put(i, "outlier", o)
        for i in ok_ids:
            s = data.stats[i]
            put(i, "blank", C.check_blank(s, cfg))
            if ref is not None:
                put(i, "exposure", C.check_exposure(s, ref))
                put(i, "contrast", C.check_contrast(s, ref))
                put(i, "sharpness", C.check_sharpness(s, ref))
                if "text_overlay" in todo:
                    put(i, "text_overlay", C.check_text_overlay(s, ref))
                if "distortion" in todo:
                    put(i, "distortion", C.check_distortion(s, ref))
                if i in todo["memorisation"]:
                    put(i, "memorisation", C.check_memorisation(s, nearest.get(i), ref, cfg))
            if jd is not None and i in todo["agreement"]:
                put(i, "agreement", C.check_agreement(data.predicted[i],
                                                      _intended(by_id[i], jd), cfg))
        cat.record_qc(results)
        results.clear()
        bar.update(len(chunk))
    bar.close()
    summary = qc_summary(cat, set_name)
    summary.update({
        "checked_now": counts,
        "skipped": skipped,
        "outlier_features": {"space": space, "extractor": outlier_id},
        "judge": jd.describe() if jd is not None else None,
        "reference": ref.summary() if ref is not None else {"n": len(refs)},
        "config": cfg.model_dump(mode="json"),
        "sharpness_limit": limit,
    })
    return summary


def _intended(rec: ImageRecord, judge: Judge | None) -> dict[str, str]:
    if judge is None:
        return {}
    return {k: v for k, v in rec.attributes.items() if k in judge.labels}


def _build_reference(reader: _Reader, refs: list[ImageRecord], cfg: QCConfig, ref_fp: str,
                     progress: bool) -> C.Reference:
    ids: list[int] = []
    stats: list[ImageStats] = []
    outlier: list[np.ndarray] = []
    domain: list[np.ndarray] = []
    bad: list[str] = []
    bar = tqdm(total=len(refs), desc="qc reference", unit="img", disable=not progress)
    for chunk in _chunks(refs, CHUNK):
        data, decoded = reader.read(chunk, want_features=True, expect_size=False)
        bad += [f"{i}: {o.detail}" for i, o in decoded.items() if not o.passed]
        for i in data.stats:
            ids.append(i)
            stats.append(data.stats[i])
            outlier.append(data.outlier[i])
            if i in data.domain:
                domain.append(data.domain[i])
        bar.update(len(chunk))
    bar.close()
    if bad:
        tqdm.write(f"qc: {len(bad)} reference images skipped (e.g. {bad[0]})")
    return C.build_reference(
        ids, stats, cfg, ref_fp,
        features=np.stack(outlier) if outlier else None,
        feature_id=reader.space,
        domain=np.stack(domain) if domain else None,
    )


def qc_summary(catalog: Catalog, set_name: str) -> dict[str, Any]:
    """Pass/fail counts per check and overall, from what the catalog holds."""
    ids = [r.id for r in catalog.images(set_name=set_name)]
    rows = catalog.qc_results(ids)
    per: dict[str, dict[str, Any]] = {}
    for results in rows.values():
        for r in results:
            d = per.setdefault(r.check_name, {"passed": 0, "failed": 0})
            d["passed" if r.passed else "failed"] += 1
    for d in per.values():
        d["pass_rate"] = d["passed"] / max(1, d["passed"] + d["failed"])
    passed = _passed(rows, ids)
    return {
        "set": set_name,
        "n": len(ids),
        "checked": len(rows),
        "passed_all": len(passed),
        "pass_rate": len(passed) / len(ids) if ids else 0.0,
        "checks": {c: per[c] for c in C.CHECKS if c in per},
        "failures_by_reason": {c: per[c]["failed"] for c in C.CHECKS
                               if c in per and per[c]["failed"]},
    }


def _passed(rows: dict[int, list[QCResult]], ids: list[int]) -> set[int]:
    out = set()
    for i in ids:
        results = rows.get(i, [])
        names = {r.check_name for r in results}
        if all(c in names for c in C.CORE_CHECKS) and all(r.passed for r in results):
            out.add(i)
    return out


def passed_ids(catalog: Catalog, set_name: str) -> set[int]:
    """Images of ``set_name`` that passed every automatic check (all core checks recorded and
    passed, and no recorded check failed — a judge-based check counts once it has run)."""
    ids = [r.id for r in catalog.images(set_name=set_name)]
    return _passed(catalog.qc_results(ids), ids)
