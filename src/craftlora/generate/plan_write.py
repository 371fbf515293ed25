"""Size a plan by a share of the training set (with a margin for QC losses) and write it.

The study's synthetic sets (570 targeted, 2,500 comprehensive beside 25,877 real images) are
shares of the final training set. ``share_counts`` turns a share into the images that make it
(the mixer's count) and the images to generate so that enough survive QC; ``write_plan`` is the
one path from options to a plan file, used by ``craftlora plan`` and the demo.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from craftlora.catalog.workspace import Workspace
from craftlora.generate.plan_model import Plan, PlanError, save_plan
from craftlora.generate.planner import DualConfig, TierConfig, make_plan
from craftlora.generate.prompts import PromptSpec, build_prompt

#: generated beyond the margin, so that a small set keeps a spare image
SPARE = 2


def share_counts(n_train: int, share: float, margin: float) -> tuple[int, int]:
    """(images that make ``share`` of train + synthetic, images to generate with ``margin``)."""
    if not 0.0 <= share < 1.0:
        raise PlanError(f"share must be in [0, 1), not {share}")
    if margin < 0:
        raise PlanError(f"margin must be ≥ 0, not {margin}")
    need = int(math.floor(n_train * share / (1.0 - share) + 0.5))  # as the mixer counts
    return need, int(round(need * (1 + margin))) + SPARE


def write_plan(ws: Workspace, target: Path, *, strategy: str = "tiers",
               shares: Sequence[float] = (), margin: float = 0.2, total: int | None = None,
               by: Sequence[str] | None = None, tiers: TierConfig | None = None,
               dual: DualConfig | None = None, confusion: Path | None = None,
               valid: Path | None = None, split: str | None = "train",
               prompt: PromptSpec | None = None, seed: int = 0, model: str = "mini",
               generation: Mapping[str, Any] | None = None, force: bool = False
               ) -> tuple[Plan, dict[str, Any]]:
    """Plan, write ``target`` (with a prompt preview); return the plan and its summary.

    ``shares`` sizes the sets instead of ``total``: one share for ``tiers``, two (minimal,
    comprehensive) for ``dual``, each a share of the real ``split`` images plus the synthetic.
    ``generation`` settings replace those of ``model``'s preset.
    """
    target = Path(target)
    if target.exists() and not force:
        raise PlanError(f"{target}: exists; pass --force to overwrite or --out elsewhere")
    n_train = len(ws.catalog.images(split=split, origin="real"))
    sized: list[tuple[float, int, int]] = []
    if shares:
        want = 2 if strategy == "dual" else 1
        if len(shares) != want:
            raise PlanError(f"strategy {strategy!r} takes {want} share(s), not {len(shares)}")
        if total is not None:
            raise PlanError("give a total or shares, not both")
        sized = [(r, *share_counts(n_train, r, margin)) for r in shares]
        if strategy == "dual":
            dual = (dual or DualConfig()).model_copy(update={
                "minimal_total": sized[0][2], "comprehensive_total": sized[1][2]})
        else:
            total = sized[0][2]
    plan = make_plan(ws, strategy=strategy, by=by, total=total, tiers=tiers, dual=dual,
                     confusion=confusion, valid=valid, split=split, prompt=prompt, seed=seed,
                     model=model, generation=generation)
    preview = {(st.name, e.id): build_prompt(ws.config, e.attributes, plan.prompt)
               for st in plan.sets for e in st.entries}
    save_plan(plan, target, preview)
    sets: dict[str, Any] = {st.name: {"images": st.total, "combinations": len(st.entries)}
                            for st in plan.sets}
    for st, (share, need, _) in zip(plan.sets, sized, strict=False):
        sets[st.name].update({"share": share, "needed_for_share": need, "margin": margin})
    return plan, {"plan": str(target), "strategy": plan.strategy, "by": plan.by,
                  "real_train": n_train, "sets": sets, "notes": plan.notes,
                  "example_prompt": next(iter(preview.values()), "")}
