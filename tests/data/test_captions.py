"""Caption templates and the structured-annotation schema."""

from __future__ import annotations

import json

import pytest

from craftlora.catalog.captions import write_captions
from craftlora.config import Attribute, WorkspaceConfig
from craftlora.data.captions import (
    AnnotationError,
    CaptionError,
    annotation_schema_path,
    render_caption,
    validate_annotation,
)

CFG = WorkspaceConfig(
    attributes={
        "dynasty": Attribute(values=["Song", "Yuan"]),
        "kiln": Attribute(values=["Longquan", "Ru"]),
        "type": Attribute(values=["bowl"]),
        "glaze": Attribute(values=["celadon", "white"], phrases={"celadon": "a jade-green sheen"}),
    },
    caption_template="{dynasty} dynasty, {kiln} kiln produced, Chinese porcelain, {type}, "
    "{glaze} glaze with {glaze.phrase}",
)


def test_render_values_and_phrases():
    attrs = {"dynasty": "Song", "kiln": "Longquan", "type": "bowl", "glaze": "celadon"}
    assert render_caption(CFG, attrs) == (
        "Song dynasty, Longquan kiln produced, Chinese porcelain, bowl, "
        "celadon glaze with a jade-green sheen"
    )
    # a value without a phrase stands for itself
    assert render_caption(CFG, {**attrs, "glaze": "white"}).endswith("white glaze with white")
    with pytest.raises(CaptionError, match="'kiln'"):
        render_caption(CFG, {"dynasty": "Song", "type": "bowl", "glaze": "white"})


def test_default_template_lists_every_attribute():
    cfg = WorkspaceConfig(attributes={"a": Attribute(values=["x"]), "b": Attribute(values=["y"])})
    assert render_caption(cfg, {"a": "x", "b": "y"}) == "x, y"


def test_write_captions_skips_images_lacking_attributes(labelled_ws):
    ws = labelled_ws({("celadon", "bowl"): 2})
    ws.catalog.add_image(sha256="a" * 64, path="images/k.png", width=8, height=8,
                         caption="from a kohya .txt")
    summary = write_captions(ws)
    assert summary["written"] == 2 and len(summary["skipped"]) == 1
    caps = [r.caption for r in ws.catalog.images()]
    assert caps == ["bowl, celadon glaze with a jade-green sheen"] * 2 + ["from a kohya .txt"]


GOOD = {"description": "A celadon bowl.",
        "objects": [{"name": "foot ring", "description": "unglazed", "position": ["bottom"]},
                    {"name": "rim", "description": "thin", "position": "top edge"}]}


def test_annotation_schema_is_published_and_validates():
    schema = json.loads(annotation_schema_path().read_text())
    assert schema["required"] == ["description", "objects"]
    validate_annotation(GOOD)
    validate_annotation({"description": "x", "objects": []})


@pytest.mark.parametrize("bad,where", [
    ({"objects": []}, "description"),
    ({"description": "x", "objects": [{"name": "a", "description": "b"}]}, "position"),
    ({"description": "x", "objects": [{"name": 3, "description": "b", "position": []}]},
     "objects/0/name"),
    ({**GOOD, "tags": ["x"]}, "tags"),
    ("not an object", "object"),
])
def test_annotation_errors_say_where(bad, where):
    with pytest.raises(AnnotationError, match=where):
        validate_annotation(bad)
