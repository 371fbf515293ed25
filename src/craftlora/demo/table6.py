"""The porcelain study's Table 6 on the mini world: ``craftlora compare`` of base vs LoRA.

The ceiling images are fresh true renders of each prompt's combination (``mini.judge``: the
mini world can render any), read by the judge as they are and after a round trip through the
base's VAE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from craftlora.demo.settings import DemoSettings
from craftlora.generate.compare import CompareSettings, compare
from craftlora.mini.judge import true_renders


def run_table6(out: Path, ws_dir: Path, judge: Path, lora: str, s: DemoSettings,
               progress: bool = True) -> dict[str, Any]:
    """Base vs base + LoRA on ``s.table6_images`` prompts; the figures, and for the full
    preset the study's checks (a shorter run is not sized to meet them)."""
    g = s.generation
    cs = CompareSettings(model=s.model, loras={"lora": lora}, weight=s.lora.weight,
                         prompts=s.table6_images, sampler=g.sampler, steps=g.steps, cfg=g.cfg,
                         clip_skip=g.clip_skip, batch_size=g.batch_size, size=s.size)
    res = compare(ws_dir, out, cs, judge, workers=s.workers, progress=progress,
                  truth=lambda prompts: true_renders(prompts, s.size))
    return {**res, "checks": checks(res) if s.is_full else {}}


def checks(res: dict[str, Any]) -> dict[str, bool | None]:
    """The study's Table 6 claims, in words, against this run's figures."""
    b, lo, v = res["base"], res["lora"], res["vs_base"]["lora"]
    return {
        "the LoRA halves the base's FD or better":
            None if v["fd_reduction"] is None else v["fd_reduction"] >= 0.5,
        "the LoRA's glaze and type agree with the prompt in at least 80 % of images":
            lo["glaze_type_agreement"] >= 0.80,
        "the LoRA reaches at least 80 % of the judge's ceiling on exact combinations":
            None if v["combo_over_ceiling"] is None else v["combo_over_ceiling"] >= 0.8,
        "the base agrees at most half as often as the LoRA":
            b["glaze_type_agreement"] <= 0.5 * lo["glaze_type_agreement"]
            and b["combo_agreement"] <= 0.5 * lo["combo_agreement"],
    }
