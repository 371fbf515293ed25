"""The mini-kiln world as a workspace: render, catalog, split, caption and chart its tail."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from craftlora.catalog.captions import write_captions
from craftlora.catalog.ingest import ingest
from craftlora.catalog.split import assign_splits
from craftlora.catalog.stats import workspace_stats, write_charts
from craftlora.catalog.workspace import Workspace
from craftlora.config import CONFIG_NAME
from craftlora.mini.kiln import workspace_config
from craftlora.mini.render import render_kiln


def build_world(ws_dir: Path, stats_dir: Path, *, n: int, seed: int, size: int,
                caption_template: str, min_agreement: float, workers: int = 1,
                progress: bool = True) -> dict[str, Any]:
    """``n`` renders cataloged in ``ws_dir`` (created once; a rerun ingests idempotently),
    split and captioned, with the long-tail charts in ``stats_dir``. QC of generated sets
    expects ``size``² images and scales its sharpness limit to the decoder."""
    ws_dir = Path(ws_dir)
    src = ws_dir.parent / "render-tmp" / "mini-kiln"
    labels = render_kiln(src, n=n, seed=seed, size=size, workers=workers, progress=progress)
    if (ws_dir / CONFIG_NAME).is_file():
        ws = Workspace.open(ws_dir)
    else:
        cfg = workspace_config("mini-kiln-demo")
        cfg = cfg.model_copy(update={
            "caption_template": caption_template,
            "qc": cfg.qc.model_copy(update={"expected_size": (size, size),
                                            "min_agreement": min_agreement,
                                            "sharpness_reference": "decoder"}),
        })
        ws = Workspace.create(ws_dir, cfg)
    with ws:
        rep = ingest(ws, src, labels=labels, progress=progress)
        split = assign_splits(ws, seed=seed)
        caps = write_captions(ws)
        st = workspace_stats(ws)
        charts = write_charts(st, Path(stats_dir))
    shutil.rmtree(src.parent, ignore_errors=True)
    return {
        "workspace": str(ws_dir), "images": rep.ingested + rep.already_present,
        "rejected": len(rep.rejected), "split": split["counts"],
        "combinations": st["observed_combinations"], "imbalance_ratio": st["imbalance_ratio"],
        "gini": st["gini"], "caption_template": caption_template,
        "caption_example": caps.get("example"), "charts": charts,
    }
