"""The character's description (the project's one annotation schema) and its trigger word,
stored in ``WS/character/``; ``init_character`` makes the workspace when it does not exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from craftlora.catalog.workspace import Workspace
from craftlora.character.prompts import AXES
from craftlora.config import CONFIG_NAME, Attribute, QCConfig, WorkspaceConfig
from craftlora.data.atomic import atomic_write_json
from craftlora.data.captions import AnnotationError, read_annotation

CHARACTER_DIR = "character"
SPEC_FILE = "spec.json"
META_FILE = "character.json"
_TRIGGER = re.compile(r"[a-z][a-z0-9_\-]{1,39}")


class CharacterError(ValueError):
    """The character spec or trigger is unusable; the message names the file and the fault."""


def read_spec(path: str | Path) -> dict[str, Any]:
    """The validated spec; errors name the file and the JSON path (``objects/0/name: ...``)."""
    try:
        return read_annotation(path)
    except AnnotationError as e:
        raise CharacterError(str(e)) from None


def check_trigger(trigger: str) -> str:
    if not _TRIGGER.fullmatch(trigger):
        raise CharacterError(f"trigger {trigger!r} must be one lower-case word of 2-40 letters, "
                             "digits, '_' or '-' (it becomes the first tag of every caption)")
    return trigger


def workspace_config(name: str) -> WorkspaceConfig:
    """A character workspace: the prompt axes as attributes, both character QC checks on."""
    return WorkspaceConfig(
        name=name, attributes={k: Attribute(values=list(v)) for k, v in AXES.items()},
        qc=QCConfig(optional_checks=["text_overlay", "distortion"]))


def init_character(root: str | Path, spec_path: str | Path, trigger: str) -> dict[str, Any]:
    """Validate and store the spec and trigger in ``root`` (created as a workspace if new)."""
    spec = read_spec(spec_path)
    check_trigger(trigger)
    root = Path(root)
    if (root / CONFIG_NAME).is_file():
        Workspace.open(root).close()
    else:
        Workspace.create(root, workspace_config(f"character-{trigger}")).close()
    folder = root / CHARACTER_DIR
    atomic_write_json(folder / SPEC_FILE, spec)
    meta = {"trigger": trigger, "spec": str(Path(spec_path)), "objects": len(spec["objects"])}
    atomic_write_json(folder / META_FILE, meta)
    return meta


def load_character(root: str | Path) -> tuple[dict[str, Any], str]:
    """(spec, trigger) stored by ``init_character``."""
    folder = Path(root) / CHARACTER_DIR
    if not (folder / META_FILE).is_file():
        raise CharacterError(f"{folder}: no character here; run `craftlora character init` "
                             "first")
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    return read_spec(folder / SPEC_FILE), check_trigger(meta["trigger"])
