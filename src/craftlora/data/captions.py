"""Caption templates over attributes, and structured annotations checked against a JSON Schema.

A template names attributes in braces: ``{glaze}`` is the value, ``{glaze.phrase}`` the value's
descriptive phrase from the config (the value itself when it has none; ``craftlora init``
refuses such a template, see ``check_template``). The structured
annotation schema ships with the package as ``annotation.schema.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from craftlora.config import WorkspaceConfig

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.(phrase))?\}")
SCHEMA_FILE = "annotation.schema.json"


class CaptionError(ValueError):
    """An image lacks an attribute the caption template needs."""


class AnnotationError(ValueError):
    """A structured annotation does not follow the schema; the message names where and why."""


def render_caption(config: WorkspaceConfig, attributes: Mapping[str, str]) -> str:
    """Fill the workspace's caption template with one image's attributes."""

    def fill(m: re.Match[str]) -> str:
        name, phrase = m.group(1), m.group(2)
        if name not in attributes:
            raise CaptionError(f"attribute {name!r} (needed by the caption template) is missing")
        value = attributes[name]
        return config.phrase(name, value) if phrase else value

    text = _FIELD.sub(fill, config.template())
    return re.sub(r"\s+", " ", text).strip()


def check_template(config: WorkspaceConfig) -> None:
    """Refuse a template whose ``{a.phrase}`` meets a value of ``a`` without a phrase.

    Such a caption would repeat the value ("white glaze with white"); say so before any image
    is captioned.
    """
    for m in _FIELD.finditer(config.template()):
        name, phrase = m.group(1), m.group(2)
        if not phrase or name not in config.attributes:
            continue
        attr = config.attributes[name]
        bare = [v for v in attr.values if v not in attr.phrases]
        if bare:
            raise CaptionError(f"caption template uses {{{name}.phrase}} but {name} value(s) "
                               f"{bare} have no phrase; give each as VALUE:PHRASE "
                               f"(-a \"{name}={bare[0]}:...\")")


@cache
def annotation_schema() -> dict[str, Any]:
    """The published JSON Schema of a structured annotation."""
    text = resources.files("craftlora.data").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def annotation_schema_path() -> Path:
    return Path(str(resources.files("craftlora.data").joinpath(SCHEMA_FILE)))


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = annotation_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_annotation(obj: Any) -> None:
    """Raise AnnotationError listing every place where ``obj`` breaks the schema."""
    errors = sorted(_validator().iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        parts = []
        for e in errors[:5]:
            where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
            parts.append(f"{where}: {e.message}")
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        raise AnnotationError("; ".join(parts) + more)


def read_annotation(path: str | Path) -> dict[str, Any]:
    """Read and validate an annotation JSON file; AnnotationError names the file and fault."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AnnotationError(f"{path}: not readable JSON ({e})") from e
    try:
        validate_annotation(obj)
    except AnnotationError as e:
        raise AnnotationError(f"{path}: {e}") from e
    return obj
