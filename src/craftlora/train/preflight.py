"""Pre-flight checks of a training run, done in a second before any weights are loaded.

``craftlora train --check CONFIG`` prints them; every ``train`` run does them first, so a run
that cannot work fails in one line before the model is read (seconds to minutes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from craftlora.catalog.store import CatalogError
from craftlora.catalog.workspace import WorkspaceError
from craftlora.config import ConfigError
from craftlora.models.loader import ModelSourceError, locate_source
from craftlora.train import checkpoint as ckpt
from craftlora.train.config import TrainConfig
from craftlora.train.data import Example, TrainDataError, collect_examples


class PreflightError(ValueError):
    """A check failed; the message is the first failing check's one line."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    error: Exception | None = field(default=None, repr=False)  # raised again by ``require``


@dataclass
class Preflight:
    checks: list[Check] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    data_info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok,
                "checks": [{k: v for k, v in asdict(c).items() if k != "error"}
                           for c in self.checks]}

    def require(self) -> None:
        """Raise the first failure (its own error type when it has one)."""
        for c in self.checks:
            if not c.ok:
                raise c.error or PreflightError(c.detail)


def _model_check(cfg: TrainConfig) -> Check:
    try:
        found = locate_source(cfg.model, config=cfg.model_config_dir)
    except ModelSourceError as e:
        return Check("model", False, str(e), e)
    family = f", {found.family}" if found.family else ""
    note = " (not checked: needs the network)" if found.kind == "hub" else ""
    return Check("model", True, f"{found.path} ({found.kind}{family}){note}")


def _data_check(cfg: TrainConfig, pre: Preflight) -> Check:
    try:
        examples, info = collect_examples(cfg.data)
    except TrainDataError as e:
        first, _, rest = str(e).partition("\n")
        named = rest.strip().splitlines()[0].strip() if rest.strip() else ""
        return Check("data", False, f"{first} {named}".strip(), e)
    except (WorkspaceError, ConfigError, CatalogError, OSError) as e:
        return Check("data", False, str(e).splitlines()[0], e)
    missing = [e.path for e in examples if not e.path.is_file()]
    if missing:
        return Check("data", False, f"{missing[0]}: training image missing from the workspace "
                                    f"({len(missing)} of {len(examples)} missing)")
    pre.examples, pre.data_info = examples, info
    captions = len({e.caption for e in examples})
    return Check("data", True, f"{len(examples)} images with split={cfg.data.split!r} in "
                               f"{cfg.data.workspace}, {captions} distinct captions")


def _output_check(cfg: TrainConfig, resume: str | None) -> Check:
    out = cfg.output_dir
    if out.exists() and not out.is_dir():
        return Check("output", False, f"{out}: output_dir exists and is not a folder")
    if resume is None and ckpt.complete_checkpoints(out / "checkpoints"):
        return Check("output", False, f"{out}: has checkpoints already; pass --resume latest "
                                      "to continue or choose another output_dir")
    return Check("output", True, f"{out / (cfg.name + '.safetensors')}" if cfg.mode == "lora"
                 else f"{out / 'model'}")


def preflight(cfg: TrainConfig, *, resume: str | None = None, model: bool = True) -> Preflight:
    """Check the output folder, the model source (unless ``model=False``) and the data."""
    pre = Preflight()
    pre.checks.append(_output_check(cfg, resume))
    if model:
        pre.checks.append(_model_check(cfg))
    pre.checks.append(_data_check(cfg, pre))
    return pre
