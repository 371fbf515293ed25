"""What to generate: the porcelain study's seven-tier priority plan and its dual-dataset form.

Combinations are counted over the ``by`` attributes (the study used glaze and type) on the real
images (the train split when one is assigned). Each combination lands in its highest tier:

1. ``extreme_rare``  n = 1                       (study: 30 images each)
2. ``very_rare``     2 <= n <= 4                 (25 each)
3. ``confusion``     both sides of the pairs a classifier confuses most, in shared contexts
                     (25 each); pairs come from a confusion matrix file or results.json
4. ``moderate_rare`` 5 <= n <= 10                (25 each)
5. ``type_balance``  every type value reaches ``type_min`` images (real + planned)
6. ``glaze_balance`` every glaze value reaches ``glaze_min``
7. ``general``       fill to ``total`` with common combinations

Only valid combinations are planned: those observed in the workspace, plus an optional list.
Each planned combination becomes entries over full combinations (all workspace attributes),
its count shared in proportion to how often each full combination was observed.

The dual strategy makes two sets: ``minimal`` (critical combinations only: extreme rare and
confusion pairs) and ``comprehensive`` (all seven tiers), as the study's 570 / 2,500 sets.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from craftlora.catalog.workspace import Workspace
from craftlora.generate.plan_model import GenerationSettings, Plan, PlanEntry, PlanError, PlanSet
from craftlora.generate.prompts import PromptSpec
from craftlora.models.presets import PresetError, preset_for

Combo = tuple[str, ...]


class TierConfig(BaseModel):
    """Tier bounds and per-combination targets (images to generate per combination)."""

    model_config = ConfigDict(extra="forbid")

    extreme_rare_max: int = Field(default=1, ge=1)
    very_rare_max: int = Field(default=4, ge=1)
    moderate_rare_max: int = Field(default=10, ge=1)
    extreme_rare: int = Field(default=30, ge=0)
    very_rare: int = Field(default=25, ge=0)
    confusion: int = Field(default=25, ge=0)
    moderate_rare: int = Field(default=25, ge=0)
    type_attribute: str = "type"
    type_min: int = Field(default=100, ge=0)
    glaze_attribute: str = "glaze"
    glaze_min: int = Field(default=100, ge=0)
    confusion_pairs: int = Field(default=4, ge=0, description="most-confused pairs to use")
    confusion_contexts: int = Field(default=3, ge=1, description="contexts per pair")
    confusion_min_rate: float = Field(default=0.02, ge=0.0, le=1.0)
    include_unobserved: bool = Field(
        default=False, description="valid-list combinations never observed join extreme_rare"
    )


class DualConfig(BaseModel):
    """The study's dual-dataset strategy (its Table 5): a minimal and a comprehensive set."""

    model_config = ConfigDict(extra="forbid")

    minimal_extreme_rare: int = 50
    minimal_confusion: int = 30
    minimal_total: int | None = Field(default=None, ge=0, description="scale the set to this")
    comprehensive_total: int | None = Field(default=None, ge=0)
    extra_confusion_pairs: int = Field(default=3, ge=0, description="comprehensive adds these")
    ratio: float = Field(default=570 / 2500, gt=0, description="minimal/comprehensive size")


@dataclass(frozen=True)
class ConfusionPair:
    attribute: str
    a: str
    b: str
    rate: float  # the larger of the two directions' row-normalised rates


@dataclass
class Counts:
    """Observed real counts over ``by`` and over full combinations."""

    attributes: list[str]
    by: list[str]
    full: Counter[Combo]
    valid_full: set[Combo]

    def project(self, full: Combo) -> Combo:
        idx = [self.attributes.index(a) for a in self.by]
        return tuple(full[i] for i in idx)

    @property
    def by_counts(self) -> Counter[Combo]:
        c: Counter[Combo] = Counter()
        for f in self.valid_full:
            c[self.project(f)] += self.full.get(f, 0)
        return c


# ---- inputs ------------------------------------------------------------------------------------
def count_combinations(
    ws: Workspace,
    by: Sequence[str] | None = None,
    *,
    split: str | None = "train",
    valid: Iterable[Mapping[str, str]] | None = None,
) -> tuple[Counts, list[str]]:
    """Count real images per full combination; valid = observed plus ``valid``. Returns notes."""
    attrs = list(ws.config.attributes)
    by = list(by) if by else attrs
    unknown = [a for a in by if a not in attrs]
    if unknown:
        raise PlanError(f"--by names unknown attributes {unknown}; known: {attrs}")
    notes: list[str] = []
    real = ws.catalog.images(origin="real")
    if split is not None:
        in_split = [r for r in real if r.split == split]
        if in_split:
            real = in_split
            notes.append(f"counted {len(real)} real images of split {split!r}")
        else:
            notes.append(f"no real image has split {split!r}: counted all {len(real)} real images")
    full: Counter[Combo] = Counter()
    skipped = 0
    for r in real:
        if all(a in r.attributes for a in attrs):
            full[tuple(r.attributes[a] for a in attrs)] += 1
        else:
            skipped += 1
    if skipped:
        notes.append(f"{skipped} real images lack some attribute and were not counted")
    valid_full = set(full)
    for row in valid or []:
        missing = [a for a in attrs if a not in row]
        if missing:
            raise PlanError(f"valid combination {dict(row)} lacks attributes {missing}")
        combo = tuple(row[a] for a in attrs)
        for a, v in zip(attrs, combo, strict=True):
            if v not in ws.config.attributes[a].values:
                raise PlanError(f"valid combination {dict(row)}: {a} value {v!r} not allowed")
        valid_full.add(combo)
    return Counts(attrs, by, full, valid_full), notes


def read_valid_combinations(path: str | Path) -> list[dict[str, str]]:
    """A CSV (header = attribute names) or JSON list of objects of valid combinations."""
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"{path}: valid-combinations file not found")
    try:
        if path.suffix.lower() == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise PlanError(f"{path}: expected a JSON list of objects")
            return [{str(k): str(v) for k, v in r.items()} for r in rows]
        with path.open(newline="", encoding="utf-8") as f:
            return [{k: v.strip() for k, v in row.items()} for row in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as e:
        raise PlanError(f"{path}: not readable: {e}") from e


def read_confusion(
    path: str | Path, task: str | None = None, notes: list[str] | None = None
) -> dict[str, tuple[list[str], Any]]:
    """Confusion matrices by task from a JSON or CSV file (rows = true, columns = predicted).

    JSON forms: ``{"labels": [...], "matrix": [[...]], "task": T}``; ``{T: {"labels", "matrix"}}``;
    or experiment output (any object with ``labels`` and ``matrix``, ``confusion_matrix`` or
    ``confusion`` found under a task name, e.g. a run's ``result.json``); a matrix under a
    ``val`` key is preferred, else the first found (in craftlora's experiments the first config,
    the real-only baseline); one from test predictions is named in ``notes``. An experiment's
    ``results.json`` reads its baseline's runs next to it, summed over the seeds.
    CSV: header = ``,label1,label2,...``, then one row per true label; the task is ``task``
    or the file name's last ``_`` part (``confusion_glaze.csv``).
    """
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"{path}: confusion-matrix file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PlanError(f"{path}: not readable: {e}") from e
    out: dict[str, tuple[list[str], Any]] = {}
    if path.suffix.lower() == ".csv":
        rows = list(csv.reader(text.splitlines()))
        if len(rows) < 2:
            raise PlanError(f"{path}: a confusion CSV needs a header and rows")
        labels = [c.strip() for c in rows[0][1:]]
        if [r[0].strip() for r in rows[1:]] != labels:
            raise PlanError(f"{path}: row labels must equal the column labels, in order")
        try:
            m = np.array([[float(x) for x in r[1:]] for r in rows[1:]])
        except ValueError as e:
            raise PlanError(f"{path}: non-numeric cell: {e}") from e
        name = task or path.stem.split("_")[-1]
        out[name] = (labels, m)
    else:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise PlanError(f"{path}: not valid JSON: {e}") from e
        found: list[tuple[tuple[str, ...], str, Any]] = []
        _walk(obj, task, (), found)
        out = _pick(found)
        if not out and isinstance(obj, dict) and "baseline" in obj and "configs" in obj:
            out = _experiment_confusion(path, str(obj["baseline"]), notes)
        for p, n, value in found:
            if n in out and out[n] is value and "test" in p and notes is not None:
                notes.append(
                    f"{path}: the {n} confusion matrix comes from test-set predictions "
                    f"({'/'.join(p)}), so this plan is informed by the test set"
                )
        if task is not None:
            out = {k: v for k, v in out.items() if k == task}
    for name, (labels, m) in out.items():
        m = np.asarray(m, dtype=float)
        if m.shape != (len(labels), len(labels)) or not np.isfinite(m).all() or (m < 0).any():
            raise PlanError(f"{path}: task {name!r}: matrix must be square, finite, >= 0")
        out[name] = (labels, m)
    if not out:
        raise PlanError(f"{path}: no confusion matrix found (labels + matrix)")
    return out


def _experiment_confusion(
    path: Path, baseline: str, notes: list[str] | None
) -> dict[str, tuple[list[str], Any]]:
    """An experiment's ``results.json`` holds no matrices: sum the test confusion matrices of
    its baseline's runs (``runs/<baseline>/seed-*/result.json`` next to it) over the seeds."""
    runs = sorted((path.parent / "runs" / baseline).glob("seed-*/result.json"))
    if not runs:
        raise PlanError(
            f"{path}: an experiment's results.json; its matrices live in "
            f"{path.parent / 'runs' / baseline}/seed-*/result.json, and there are none"
        )
    out: dict[str, tuple[list[str], Any]] = {}
    for run in runs:
        for name, (labels, m) in read_confusion(run).items():
            if name in out and out[name][0] != labels:
                raise PlanError(f"{run}: task {name!r} labels differ from the other seeds'")
            prev = out[name][1] if name in out else 0
            out[name] = (labels, np.asarray(m, dtype=float) + prev)
    if notes is not None:
        notes.append(
            f"{path}: confusion matrices summed over the {len(runs)} seeds of the baseline "
            f"{baseline!r} (test-set predictions, so this plan is informed by the test set)"
        )
    return out


def _walk(
    obj: Any, task: str | None, path: tuple[str, ...], found: list[tuple[tuple[str, ...], str, Any]]
) -> None:
    """Collect every ``{labels, matrix|confusion_matrix|confusion}`` object with its path."""
    if isinstance(obj, dict):
        mat = obj.get("matrix", obj.get("confusion_matrix", obj.get("confusion")))
        if "labels" in obj and isinstance(mat, list):
            name = str(obj.get("task", task or "task"))
            found.append((path, name, (list(map(str, obj["labels"])), mat)))
            return
        for k, v in obj.items():
            key = task if k in ("configs", "tasks", "seeds", "confusion", "confusion_matrix") else k
            _walk(v, key if isinstance(v, dict) else task, (*path, str(k)), found)
    elif isinstance(obj, list):
        for v in obj:
            _walk(v, task, path, found)


def _pick(found: list[tuple[tuple[str, ...], str, Any]]) -> dict[str, tuple[list[str], Any]]:
    """One matrix per task: from a ``val`` part when there is one, else the first found."""
    out: dict[str, tuple[list[str], Any]] = {}
    for prefer_val in (True, False):
        for path, name, value in found:
            if name not in out and (not prefer_val or "val" in path):
                out[name] = value
    return out


def confusion_pairs(
    matrices: Mapping[str, tuple[list[str], Any]],
    attributes: Sequence[str],
    top: int,
    min_rate: float,
) -> list[ConfusionPair]:
    """The ``top`` most-confused unordered value pairs over the given attributes."""
    pairs: list[ConfusionPair] = []
    for attr, (labels, m) in matrices.items():
        if attr not in attributes:
            continue
        m = np.asarray(m, dtype=float)
        rows = m.sum(axis=1, keepdims=True)
        rate = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                r = max(rate[i, j], rate[j, i])
                if r > 0 and r >= min_rate:
                    pairs.append(ConfusionPair(attr, labels[i], labels[j], float(r)))
    pairs.sort(key=lambda p: (-p.rate, p.attribute, p.a, p.b))
    return pairs[:top]


# ---- tiers -------------------------------------------------------------------------------------
@dataclass
class Planned:
    """Targets per ``by`` combination, in tier order (a combination may recur in 5–7)."""

    rows: list[tuple[str, Combo, int]]

    def add(self, tier: str, combo: Combo, n: int) -> None:
        if n > 0:
            self.rows.append((tier, combo, n))

    def combos(self) -> set[Combo]:
        return {c for _, c, _ in self.rows}

    def total(self) -> int:
        return sum(n for _, _, n in self.rows)


def tier_targets(
    counts: Counts,
    cfg: TierConfig,
    pairs: Sequence[ConfusionPair] = (),
    total: int | None = None,
    tiers: Sequence[str] | None = None,
) -> tuple[Planned, list[str]]:
    """The seven-tier plan over ``by`` combinations (only ``tiers`` if given)."""
    use = set(tiers) if tiers is not None else None
    on = (lambda t: True) if use is None else (lambda t: t in use)
    notes: list[str] = []
    n_by = Counter({c: n for c, n in counts.by_counts.items() if n > 0 or cfg.include_unobserved})
    plan = Planned([])
    taken: set[Combo] = set()
    order = sorted(n_by, key=lambda c: (n_by[c], c))

    def band(lo: int, hi: int) -> list[Combo]:
        return [c for c in order if lo <= n_by[c] <= hi and c not in taken]

    for tier, lo, hi, target in (
        ("extreme_rare", 0, cfg.extreme_rare_max, cfg.extreme_rare),
        ("very_rare", cfg.extreme_rare_max + 1, cfg.very_rare_max, cfg.very_rare),
    ):
        for c in band(lo, hi):
            if on(tier):
                plan.add(tier, c, target)
            taken.add(c)
    # confusion pairs: both sides in the contexts (other `by` values) where both are valid
    if on("confusion"):
        for p in pairs:
            i = counts.by.index(p.attribute)
            ctx_a = {c[:i] + c[i + 1 :]: c for c in n_by if c[i] == p.a}
            ctx_b = {c[:i] + c[i + 1 :]: c for c in n_by if c[i] == p.b}
            shared = sorted(
                set(ctx_a) & set(ctx_b), key=lambda k: (min(n_by[ctx_a[k]], n_by[ctx_b[k]]), k)
            )
            if not shared:
                notes.append(f"confusion pair {p.attribute} {p.a}/{p.b}: no shared valid context")
            for k in shared[: cfg.confusion_contexts]:
                for c in (ctx_a[k], ctx_b[k]):
                    if c not in taken:
                        plan.add("confusion", c, cfg.confusion)
                        taken.add(c)
    for c in band(cfg.very_rare_max + 1, cfg.moderate_rare_max):
        if on("moderate_rare"):
            plan.add("moderate_rare", c, cfg.moderate_rare)
        taken.add(c)
    for tier, attr, minimum in (
        ("type_balance", cfg.type_attribute, cfg.type_min),
        ("glaze_balance", cfg.glaze_attribute, cfg.glaze_min),
    ):
        if not on(tier):
            continue
        if attr not in counts.by:
            notes.append(f"{tier}: attribute {attr!r} is not among {counts.by}; tier skipped")
            continue
        _balance(plan, tier, counts.by.index(attr), minimum, n_by)
    if on("general") and total is not None and plan.total() < total:
        rest = [c for c in sorted(n_by, key=lambda c: (-n_by[c], c)) if c not in plan.combos()]
        rest = rest or sorted(n_by, key=lambda c: (-n_by[c], c))
        for c, n in zip(rest, _even(total - plan.total(), len(rest)), strict=True):
            plan.add("general", c, n)
    if total is not None and plan.total() > total:
        notes.append(
            f"tiers ask for {plan.total()} images, more than total {total}: "
            "trimmed from the lowest-priority tier up"
        )
        plan = _trim(plan, total)
    return plan, notes


def _balance(plan: Planned, tier: str, i: int, minimum: int, n_by: Counter[Combo]) -> None:
    have: Counter[str] = Counter()
    for c, n in n_by.items():
        have[c[i]] += n
    for _, c, n in plan.rows:
        have[c[i]] += n
    for value in sorted({c[i] for c in n_by}):
        deficit = minimum - have[value]
        if deficit <= 0:
            continue
        cands = [c for c in n_by if c[i] == value]
        fresh = [c for c in cands if c not in plan.combos()] or cands
        fresh.sort(key=lambda c: (n_by[c], c))
        for c, n in zip(fresh, _even(deficit, len(fresh)), strict=True):
            plan.add(tier, c, n)


def _even(n: int, k: int) -> list[int]:
    return [n // k + (1 if j < n % k else 0) for j in range(k)] if k else []


def _trim(plan: Planned, total: int) -> Planned:
    rows = list(plan.rows)
    excess = sum(n for *_, n in rows) - total
    for tier in reversed(list(dict.fromkeys(t for t, _, _ in rows))):
        if excess <= 0:
            break
        idx = [j for j, r in enumerate(rows) if r[0] == tier]
        have = sum(rows[j][2] for j in idx)
        keep = max(have - excess, 0)
        new = apportion([rows[j][2] for j in idx], keep)
        for j, n in zip(idx, new, strict=True):
            rows[j] = (rows[j][0], rows[j][1], n)
        excess -= have - keep
    return Planned([r for r in rows if r[2] > 0])


def apportion(weights: Sequence[float], total: int) -> list[int]:
    """Integers summing to ``total`` in proportion to ``weights`` (largest remainder, stable)."""
    w = np.asarray(weights, dtype=float)
    if total <= 0 or w.size == 0 or w.sum() <= 0:
        return [0] * len(weights)
    exact = w / w.sum() * total
    base = np.floor(exact).astype(int)
    order = sorted(range(len(w)), key=lambda j: (-(exact[j] - base[j]), j))
    for j in order[: total - int(base.sum())]:
        base[j] += 1
    return [int(x) for x in base]


# ---- plan assembly -----------------------------------------------------------------------------
_SHORT = {
    "extreme_rare": "t1",
    "very_rare": "t2",
    "confusion": "t3",
    "moderate_rare": "t4",
    "type_balance": "t5",
    "glaze_balance": "t6",
    "general": "t7",
}


def _slug(values: Iterable[str]) -> str:
    return "-".join(re.sub(r"[^a-z0-9]+", "_", v.lower()).strip("_") or "x" for v in values)


def expand(counts: Counts, planned: Planned, scale_to: int | None = None) -> list[PlanEntry]:
    """Entries over full combinations; a ``by`` target is shared by observed frequency."""
    rows = list(planned.rows)
    if scale_to is not None:
        new = apportion([n for *_, n in rows], scale_to)
        rows = [(t, c, n) for (t, c, _), n in zip(rows, new, strict=True) if n > 0]
    entries: list[PlanEntry] = []
    for tier, combo, n in rows:
        fulls = sorted(f for f in counts.valid_full if counts.project(f) == combo)
        weights = [counts.full.get(f, 0) for f in fulls]
        if sum(weights) == 0:
            weights = [1] * len(fulls)
        for f, k in zip(fulls, apportion(weights, n), strict=True):
            if k <= 0:
                continue
            entries.append(
                PlanEntry(
                    id=f"{_SHORT[tier]}-{_slug(f)}",
                    tier=tier,
                    count=k,
                    observed=counts.full.get(f, 0),
                    attributes=dict(zip(counts.attributes, f, strict=True)),
                )
            )
    return entries


def generation_settings(
    model: str, seed: int, given: Mapping[str, Any] | None, notes: list[str]
) -> GenerationSettings:
    """``given`` settings; the rest from ``model``'s preset, which ``notes`` then names."""
    given = dict(given or {})
    unset = [k for k in ("sampler", "steps", "cfg", "clip_skip") if k not in given]
    if unset:
        try:
            preset = preset_for(model)
        except PresetError as e:
            raise PlanError(f"{e}; set {', '.join(unset)} under [generation]") from None
        notes.append(f"{', '.join(unset)} from the model's preset, {preset.summary()}; "
                     f"{preset.source}")
    try:
        return GenerationSettings.model_validate({**given, "model": model, "seed": seed})
    except ValidationError as e:
        keys = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise PlanError(f"invalid [generation] settings: {keys}") from None


def make_plan(
    ws: Workspace,
    *,
    strategy: str = "tiers",
    by: Sequence[str] | None = None,
    total: int | None = None,
    tiers: TierConfig | None = None,
    dual: DualConfig | None = None,
    confusion: str | Path | None = None,
    valid: str | Path | Iterable[Mapping[str, str]] | None = None,
    split: str | None = "train",
    prompt: PromptSpec | None = None,
    seed: int = 0,
    model: str = "mini",
    generation: Mapping[str, Any] | None = None,
) -> Plan:
    """A plan for ``ws``: "tiers" = one set ``tiers``; "dual" = ``minimal`` + ``comprehensive``.

    Its ``[generation]`` settings are ``generation``'s, the rest from ``model``'s preset.
    """
    tiers = tiers or TierConfig()
    if isinstance(valid, str | Path):
        valid = read_valid_combinations(valid)
    counts, notes = count_combinations(ws, by, split=split, valid=valid)
    if not counts.full:
        raise PlanError(f"{ws.root}: no labelled real images to plan from")
    matrices = read_confusion(confusion, notes=notes) if confusion is not None else {}
    if confusion is None:
        notes.append("no confusion matrix given: the confusion tier is empty")
    plan = Plan(
        workspace=ws.config.name,
        strategy=strategy,
        by=counts.by,
        generation=generation_settings(model, seed, generation, notes),
        prompt=prompt or PromptSpec(),
    )
    if strategy == "tiers":
        pairs = confusion_pairs(
            matrices, counts.by, tiers.confusion_pairs, tiers.confusion_min_rate
        )
        planned, more = tier_targets(counts, tiers, pairs, total)
        plan.sets.append(
            PlanSet(
                name="tiers", purpose="seven-tier priority plan", entries=expand(counts, planned)
            )
        )
    elif strategy == "dual":
        dual = dual or DualConfig()
        comp_total = dual.comprehensive_total if dual.comprehensive_total is not None else total
        min_total = dual.minimal_total
        if min_total is None and comp_total is not None:
            min_total = round(comp_total * dual.ratio)
        pairs = confusion_pairs(
            matrices, counts.by, tiers.confusion_pairs, tiers.confusion_min_rate
        )
        mcfg = tiers.model_copy(
            update={"extreme_rare": dual.minimal_extreme_rare, "confusion": dual.minimal_confusion}
        )
        minimal, more = tier_targets(counts, mcfg, pairs, None, tiers=("extreme_rare", "confusion"))
        wide = confusion_pairs(
            matrices,
            counts.by,
            tiers.confusion_pairs + dual.extra_confusion_pairs,
            tiers.confusion_min_rate,
        )
        comp, more2 = tier_targets(counts, tiers, wide, comp_total)
        more += more2
        plan.sets.append(
            PlanSet(
                name="minimal",
                purpose="minimal targeted set: critical rare combinations and confusion pairs",
                entries=expand(counts, minimal, min_total),
            )
        )
        plan.sets.append(
            PlanSet(
                name="comprehensive",
                purpose="comprehensive set: all seven tiers",
                entries=expand(counts, comp, comp_total),
            )
        )
    else:
        raise PlanError(f"strategy must be 'tiers' or 'dual', not {strategy!r}")
    plan.notes = notes + [m for m in more if m not in notes]
    for s in plan.sets:
        plan.notes.append(f"set {s.name}: {s.total} images over {len(s.entries)} combinations")
    return plan
