"""Base vs LoRA on the same prompts and seeds: Fréchet distance and attribute agreement.

The prompts are the workspace caption template filled with the attributes of real held-out
(test) images, drawn with a fixed seed; image ``i`` gets the same seed under every model. A
judge (a craftlora classifier checkpoint) reads every image: its penultimate features give the
Fréchet distance to the real reference set (``fd_domain``, the feature space is named in the
output), its heads give the agreement with the intended attributes. With a held-out set the
same judge reads the true images of the prompts (``judge_ceiling``: the best a generator can
score under this judge) and those images after a round trip through the model's VAE
(``decoder_ceiling``: the best a generator that decodes through it can look). Without a judge
the FD is in a registered generic feature space (``metrics.features``), and there is no
agreement and no ceiling.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator
from rich.table import Table

from craftlora.catalog.workspace import Workspace
from craftlora.data.atomic import atomic_write_bytes, atomic_write_json
from craftlora.data.imageio import png_data_uri
from craftlora.generate.prompts import DEFAULT_NEGATIVE, build_prompt
from craftlora.generate.runner import pipeline_fingerprint
from craftlora.generate.samplers import set_sampler
from craftlora.metrics.agreement import attribute_agreement
from craftlora.metrics.clip_score import ClipScorer
from craftlora.metrics.fd import fd_between
from craftlora.metrics.features import FeatureExtractor, get_extractor
from craftlora.metrics.judge import Judge
from craftlora.metrics.sets import load_images
from craftlora.metrics.weights import read_registry
from craftlora.models.loader import load_components
from craftlora.models.roundtrip import roundtrip_images
from craftlora.models.text import diffusers_clip_skip, prompt_embeds
from craftlora.runtime.workers import run_parallel

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BASE = "base"
#: the tag of the per-image seeds (the demo's Table 6 was measured with these seeds)
SEED_TAG = "table6"
Truth = Callable[[list[dict[str, Any]]], list[np.ndarray]]


class CompareSettings(BaseModel):
    """What makes the images; written into ``compare.json``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="base model source (loader string)")
    loras: dict[str, str] = Field(description="row name → LoRA .safetensors (diffusers)")
    weight: float = 1.0
    prompts: int = Field(default=320, gt=0)
    prompt_seed: int = 0
    sampler: str = "DDIM"
    steps: int = Field(default=20, gt=0)
    cfg: float = 1.75
    clip_skip: int = Field(default=1, ge=1)
    batch_size: int = Field(default=16, gt=0)
    size: int = Field(default=64, gt=0)

    @field_validator("loras")
    @classmethod
    def _not_the_base_row(cls, v: dict[str, str]) -> dict[str, str]:
        if BASE in v:
            raise ValueError(f"a LoRA row cannot be named {BASE!r}: that row is the base model "
                             "without a LoRA")
        return v


def prompt_seed(i: int) -> int:
    h = hashlib.sha256(f"{SEED_TAG}|{i}".encode()).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


def choose_prompts(ws: Workspace, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` held-out real images' combinations → prompts (repeats when the set is small).

    Without a test split the prompts come from the train split and there is no ceiling.
    """
    split = "test" if ws.catalog.images(split="test", origin="real") else "train"
    recs = ws.catalog.images(split=split, origin="real")
    if not recs:
        raise ValueError(f"{ws.root}: no real test or train images to take prompts from")
    pick = np.random.default_rng(seed).choice(len(recs), size=n, replace=n > len(recs))
    return [{"i": k, "attributes": dict(recs[j].attributes), "split": split,
             "prompt": build_prompt(ws.config, dict(recs[j].attributes)),
             "image": recs[j].id, "seed": prompt_seed(k)}
            for k, j in enumerate(pick.tolist())]


def generate_shard(out: str, settings_json: str, shard: int, count: int,
                   report: Any = None) -> dict[str, Any]:
    """This shard's images under every row (skipping files that exist)."""
    s = CompareSettings.model_validate_json(settings_json)
    root = Path(out)
    prompts = json.loads((root / "prompts.json").read_text(encoding="utf-8"))[shard::count]
    pipe = load_components(s.model).pipeline()
    pipe.set_progress_bar_config(disable=True)
    model_hash = pipeline_fingerprint(pipe)
    set_sampler(pipe, s.sampler)
    for name, path in s.loras.items():
        pipe.load_lora_weights(path, adapter_name=name)
    skip = diffusers_clip_skip(s.clip_skip)
    made = 0
    for row in (BASE, *s.loras):
        folder = root / row
        folder.mkdir(parents=True, exist_ok=True)
        if row == BASE:
            if s.loras:
                pipe.disable_lora()
        else:
            pipe.enable_lora()
            pipe.set_adapters([row], adapter_weights=[
                {"unet": s.weight, "text_encoder": s.weight}])
        todo = [p for p in prompts if not (folder / f"{p['i']:05d}.png").is_file()]
        if report is not None and len(todo) < len(prompts):
            report(len(prompts) - len(todo))
        for b in range(0, len(todo), s.batch_size):
            batch = todo[b:b + s.batch_size]
            images = pipe(
                **prompt_embeds(pipe, [p["prompt"] for p in batch],
                                [DEFAULT_NEGATIVE] * len(batch), skip),
                num_inference_steps=s.steps, guidance_scale=s.cfg,
                generator=[torch.Generator("cpu").manual_seed(p["seed"]) for p in batch],
                width=s.size, height=s.size,
            ).images
            for p, im in zip(batch, images, strict=True):
                tmp = folder / f".{p['i']:05d}.png.tmp"
                im.save(tmp, format="PNG")
                tmp.replace(folder / f"{p['i']:05d}.png")
            made += len(batch)
            if report is not None:
                report(len(batch))
    return {"made": made, "model_hash": model_hash}


def held_out_images(ws: Workspace) -> Truth:
    """The true images of the prompts: the held-out real images they were taken from."""
    def read(prompts: list[dict[str, Any]]) -> list[np.ndarray]:
        recs = {r.id: r for r in ws.catalog.images(split="test", origin="real")}
        _, arrays, errors = load_images(ws, [recs[p["image"]] for p in prompts])
        if errors:
            raise ValueError("; ".join(errors))
        return arrays
    return read


def default_pair(labels: Sequence[str]) -> tuple[str, str] | None:
    """glaze + type when the judge reads both, else no pair."""
    return ("glaze", "type") if {"glaze", "type"} <= set(labels) else None


def check_pair(reader: FeatureExtractor, pair: tuple[str, str] | None
               ) -> tuple[str, str] | None:
    """The pair to read (the default when none is given); an error when the judge cannot."""
    labels = reader.labels if isinstance(reader, Judge) else {}
    if pair is None:
        return default_pair(labels)
    if not set(pair) <= set(labels):
        raise ValueError(f"--pair {','.join(pair)}: the judge reads "
                         f"{', '.join(labels) or 'nothing (no judge)'}")
    return pair


def measure(out: Path, ws: Workspace, reader: FeatureExtractor, rows: list[str],
            truth: Truth | None, vae: Any = None, pair: tuple[str, str] | None = None
            ) -> dict[str, Any]:
    """Every figure from the images on disk; ceilings only with ``truth``.

    A ``Judge`` reader gives FD in its feature space and the attribute agreement (``pair``:
    default glaze + type when it reads both); any other extractor gives FD alone.
    """
    prompts = json.loads((out / "prompts.json").read_text(encoding="utf-8"))
    ref_split = prompts[0].get("split", "test") if prompts else "test"
    _, real, errors = load_images(ws, ws.catalog.images(split=ref_split, origin="real"))
    judge = reader if isinstance(reader, Judge) else None
    real_f = reader.features(real)
    labels = judge.labels if judge else {}
    pair = check_pair(reader, pair)
    intended = [{k: v for k, v in p["attributes"].items() if k in labels} for p in prompts]

    def row(arrays: list[np.ndarray]) -> dict[str, Any]:
        if judge is None:
            fd = fd_between(reader.features(arrays), real_f)
            return {"fd": fd["fd"], "pair_agreement": None, "glaze_type_agreement": None,
                    "combo_agreement": None, "per_attribute": {}, "n": len(arrays),
                    "n_real": fd["n2"], "predicted": []}
        feats, preds = judge.read(arrays)
        pairs = [p for p in (pair, ("glaze", "type")) if p and set(p) <= set(labels)]
        agr = attribute_agreement(preds, intended, pairs=pairs)
        fd = fd_between(feats, real_f)
        return {"fd": fd["fd"], "fd_domain": fd["fd"],
                "pair_agreement": agr.get("_".join(pair)) if pair else None,
                "glaze_type_agreement": agr.get("glaze_type"),
                "combo_agreement": agr["combo"], "per_attribute": agr["per_attribute"],
                "n": len(arrays), "n_real": fd["n2"], "predicted": preds}

    res: dict[str, Any] = {}
    for name in rows:
        res[name] = row([np.asarray(Image.open(out / name / f"{p['i']:05d}.png").convert("RGB"))
                         for p in prompts])
    if truth is not None and ref_split == "test" and judge is not None:
        true = truth(prompts)
        res["judge_ceiling"] = row(true)
        if vae is not None:
            res["decoder_ceiling"] = row(roundtrip_images(vae, true))
    res["vs_base"] = {name: vs_base(res[BASE], res[name], res.get("judge_ceiling"))
                      for name in rows if name != BASE}
    if judge is not None:
        res["judge"] = {**judge.describe(), "feature_space": f"{judge.id} (the judge's "
                        "penultimate layer)"}
        res["feature_space"] = res["judge"]["feature_space"]
    else:
        res["judge"] = None
        res["feature_space"] = f"{reader.id} (generic; no judge)"
        res["agreement"] = ("attribute agreement needs a judge: a checkpoint from "
                            "`craftlora classify train`, given as --judge")
    res["pair"] = list(pair) if pair else None
    res["reference"] = {"set": f"real {ref_split} split", "n": len(real), "skipped": errors}
    res["prompts"] = len(prompts)
    return res


def clip_rows(out: Path, rows: list[str]) -> dict[str, Any] | None:
    """Per row, the mean CLIP score of its images against their prompts, with the model that
    gave it; None when no CLIP model is registered (``craftlora weights add clip DIR``)."""
    if "clip" not in read_registry():
        return None
    scorer = ClipScorer()
    prompts = json.loads((out / "prompts.json").read_text(encoding="utf-8"))
    texts = [p["prompt"] for p in prompts]
    per = {name: scorer.score([Image.open(out / name / f"{p['i']:05d}.png").convert("RGB")
                               for p in prompts], texts)["clip_score"] for name in rows}
    return {"per_row": per, **scorer.describe()}


def vs_base(base: dict[str, Any], other: dict[str, Any], ceiling: dict[str, Any] | None
            ) -> dict[str, float | None]:
    """A row against the base: FD reduction, and its exact agreement as a share of the ceiling."""
    c = ceiling["combo_agreement"] if ceiling else 0.0
    return {"fd_reduction": 1.0 - other["fd"] / base["fd"] if base["fd"] > 0 else None,
            "combo_over_ceiling": other["combo_agreement"] / c if c > 0 else None}


def public(res: dict[str, Any]) -> dict[str, Any]:
    """The figures without per-image predictions."""
    keep = ("fd", "fd_domain", "pair_agreement", "glaze_type_agreement", "combo_agreement",
            "per_attribute", "n")
    return {k: ({f: v[f] for f in keep if f in v} if isinstance(v, dict) and "predicted" in v
                else v)
            for k, v in res.items()}


def figures_table(res: dict[str, Any], labels: dict[str, str], title: str) -> Table:
    """The figures as a console table, one line per row of ``labels`` (key → label)."""
    t = Table(title=title)
    for col in ("images from", "FD", pair_label(res), "exact", "N"):
        t.add_column(col)
    for key, label in labels.items():
        if key in res:
            r = res[key]
            t.add_row(label, f"{r['fd']:.4g}", _num(r["pair_agreement"]),
                      _num(r["combo_agreement"]), str(r["n"]))
    return t


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def agreement_chart(res: dict[str, Any], rows: list[str]) -> bytes:
    """PNG: pair and exact agreement per row as bars, the ceilings as dashed lines."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    x = np.arange(len(rows))
    bars = [("pair_agreement", pair_label(res))] if res.get("pair") else []
    for k, (key, label) in enumerate((*bars, ("combo_agreement", "exact"))):
        vals = [res[r][key] or 0.0 for r in rows]
        ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, label=label, color=f"C{k}")
        for c, style in (("judge_ceiling", "--"), ("decoder_ceiling", ":")):
            if c in res and res[c][key] is not None:
                ax.axhline(res[c][key], color=f"C{k}", ls=style, lw=1,
                           label=f"{label}: {c.replace('_', ' ')}")
    ax.set_xticks(x, [r.replace("_", " ") for r in rows])
    ax.set(ylim=(0, 1), ylabel="share the judge reads as intended")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def pair_label(res: dict[str, Any]) -> str:
    """``glaze + type``: how tables and charts name the pair."""
    return " + ".join(res.get("pair") or ()) or "pair"


def figures_html(res: dict[str, Any], rows: list[str],
                 labels: dict[str, str] | None = None) -> str:
    """The figures as an HTML table, what read them, and (with a judge) the agreement chart."""
    labels = labels or {}

    def num(v: float | None, fmt: str) -> str:
        return "–" if v is None else format(v, fmt)

    figs = []
    for name in (*rows, "judge_ceiling", "decoder_ceiling"):
        if name in res:
            r = res[name]
            label = labels.get(name, name.replace("_", " "))
            figs.append(f"<tr><td>{html.escape(label)}</td>"
                        f"<td>{r['fd']:.1f}</td><td>{num(r['pair_agreement'], '.3f')}</td>"
                        f"<td>{num(r['combo_agreement'], '.3f')}</td><td>{r['n']}</td></tr>")
    j = res["judge"]
    reader = (f"judge {html.escape(Path(j['checkpoint']).name)} (weights sha256 "
              f"<code>{html.escape(j.get('weights_sha256', '')[:16])}…</code>)" if j
              else html.escape(res["agreement"]))
    chart = (f'<p><img src="{png_data_uri(agreement_chart(res, rows))}" alt="agreement chart" '
             'style="max-width:100%"></p>' if j else "")
    if "clip_score" in res:
        c = res["clip_score"]
        clip_line = ("<p>CLIP score (text–image, 100·cos clipped at 0) with "
                     f"{html.escape(Path(c['clip_model']).name)} (sha256 "
                     f"{c['clip_weights_sha256'][:12]}): " + ", ".join(
                         f"{html.escape(k)} {num(v, '.2f')}" for k, v in c["per_row"].items())
                     + ".</p>")
    else:
        clip_line = ("<p>No CLIP score: no CLIP model is registered on this machine "
                     "(<code>craftlora weights add clip DIR</code>).</p>")
    return (f"<p>FD in the feature space of {html.escape(res['feature_space'])} to the "
            f"{html.escape(res['reference']['set'])} ({res['reference']['n']} images); "
            f"agreement read by {reader}.</p>"
            f"<table><tr><th>images from</th><th>FD</th><th>{html.escape(pair_label(res))}</th>"
            f"<th>exact</th><th>N</th></tr>{''.join(figs)}</table>{clip_line}{chart}")


def grid_html(out: Path, rows: list[str], show: int = 12,
              first: dict[str, list[np.ndarray]] | None = None,
              labels: dict[str, str] | None = None) -> str:
    """The first ``show`` prompts, one a line: prompt and seed, then ``first``'s columns (e.g.
    true renders), then each row's image; ``labels`` name the columns."""
    prompts = json.loads((out / "prompts.json").read_text(encoding="utf-8"))[:show]
    first, labels = first or {}, labels or {}
    cols = [*first, *rows]
    head = "".join(f"<th>{html.escape(labels.get(c, c.replace('_', ' ')))}</th>" for c in cols)
    lines = []
    for k, p in enumerate(prompts):
        ims = [v[k] for v in first.values()] + [Image.open(out / r / f"{p['i']:05d}.png")
                                                for r in rows]
        cells = "".join(f'<td><img src="{png_data_uri(im)}" width="96" height="96" '
                        f'alt="{html.escape(c)}"></td>' for c, im in zip(cols, ims, strict=True))
        lines.append(f"<tr><td>{html.escape(p['prompt'])}<br>seed {p['seed']}</td>{cells}</tr>")
    return (f"<table><tr><th>prompt</th>{head}</tr>{''.join(lines)}</table>")


def write_page(out: Path, res: dict[str, Any], rows: list[str], show: int = 12) -> Path:
    """``compare.html``: the figures and a grid (one prompt a line, one column a row)."""
    page = (
        "<!doctype html><meta charset='utf-8'><title>craftlora compare</title>"
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
        "td,th{padding:2px 8px;text-align:left}img{image-rendering:pixelated}</style>"
        f"<h1>Same prompts, same seeds ({res['prompts']} prompts)</h1>"
        + figures_html(res, rows)
        + f"<h2>First {min(show, res['prompts'])} prompts</h2>" + grid_html(out, rows, show))
    path = out / "compare.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    return path


def compare(ws_dir: Path, out: Path, s: CompareSettings, judge_path: Path | None, *,
            workers: int = 1, truth: Truth | None = None, progress: bool = True,
            pair: tuple[str, str] | None = None, features: str = "inception"
            ) -> dict[str, Any]:
    """Generate (resumable), measure, and write ``compare.json`` + ``compare.html`` in ``out``.

    ``truth`` gives the true images of the prompts for the ceilings (default: the held-out
    real images the prompts were taken from). Without a judge the FD is in the registered
    generic feature space ``features`` and there is no agreement and no ceiling.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    made_by = out / "settings.json"  # the images on disk were made with these
    if made_by.is_file() and json.loads(made_by.read_text(encoding="utf-8")) != s.model_dump():
        raise ValueError(f"{out} holds images made with other settings ({made_by}); "
                         "use another --out or delete it")
    atomic_write_json(made_by, s.model_dump())
    with Workspace.open(ws_dir) as ws:
        if not (out / "prompts.json").is_file():
            atomic_write_json(out / "prompts.json", choose_prompts(ws, s.prompts, s.prompt_seed))
        rows = [BASE, *s.loras]
        reader = Judge(judge_path) if judge_path else get_extractor(features)
        check_pair(reader, pair)  # before minutes of generation
        k = max(1, workers)
        parts = run_parallel(generate_shard,
                             [(str(out), s.model_dump_json(), i, k) for i in range(k)],
                             total=len(rows) * s.prompts, desc="compare: images",
                             progress=progress)
        full = measure(out, ws, reader, rows, truth or held_out_images(ws),
                       vae=load_components(s.model).vae, pair=pair)
    res = {**public(full), "settings": s.model_dump(),
           "model_hash": parts[0]["model_hash"]}
    clip = clip_rows(out, rows)
    if clip is not None:
        res["clip_score"] = clip
    atomic_write_json(out / "compare_full.json", full)
    atomic_write_json(out / "compare.json", res)
    write_page(out, res, rows)
    return res
