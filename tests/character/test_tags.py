"""Tags: trigger first, no repeats; the ONNX tagger names what it lacks."""

from __future__ import annotations

import importlib.util

import pytest

from craftlora.character.tags import OnnxTagger, TaggerError, image_tags, read_tag_list


def test_image_tags_put_the_trigger_first_and_drop_repeats():
    attrs = {"pose": "sitting", "view": "front view", "framing": "full body",
             "expression": "smile", "background": "green background"}
    tags = image_tags("pip", attrs, ["front view", "green background", " blush "])
    assert tags == ["pip", "solo", "sitting", "front view", "full body", "smile",
                    "green background", "blush"]


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is not None,
                    reason="onnxruntime is installed here")
def test_onnx_tagger_without_onnxruntime_names_the_package(tmp_path):
    with pytest.raises(TaggerError, match="'onnxruntime' package"):
        OnnxTagger(tmp_path / "model.onnx", tmp_path / "tags.csv")


def test_tag_list_needs_a_name_column(tmp_path):
    good = tmp_path / "selected_tags.csv"
    good.write_text("tag_id,name,category\n1,looking_at_viewer,0\n2,smile,0\n")
    assert read_tag_list(good) == ["looking at viewer", "smile"]
    bad = tmp_path / "bad.csv"
    bad.write_text("tag,count\nsmile,3\n")
    with pytest.raises(TaggerError, match="'name' column"):
        read_tag_list(bad)
    with pytest.raises(TaggerError, match="unreadable"):
        read_tag_list(tmp_path / "missing.csv")
