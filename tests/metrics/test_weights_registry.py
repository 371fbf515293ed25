"""`craftlora weights`: the registry checks structure, hashes, re-checks, and every consumer
(FID's Inception, the perceptual loss) names what it used or the command that adds it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner
from weight_standins import save_standin, save_tiny_clip

from craftlora.cli.main import app
from craftlora.metrics.features import get_extractor
from craftlora.metrics.weights import (
    MissingWeightsError,
    add_weights,
    check_weights,
    detect_kind,
    file_sha256,
    read_registry,
    registry_path,
)
from craftlora.train.losses import build_perceptual, perceptual_kind

runner = CliRunner()


def test_registry_lives_where_the_environment_says(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CRAFTLORA_WEIGHTS", str(tmp_path / "w.json"))
    assert registry_path() == tmp_path / "w.json"
    monkeypatch.delenv("CRAFTLORA_WEIGHTS")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert registry_path() == tmp_path / "cfg" / "craftlora" / "weights.json"


def test_add_checks_structure_hashes_and_records(tmp_path: Path) -> None:
    vgg = save_standin("vgg19", tmp_path / "vgg19.pth")
    entry = add_weights("vgg19", vgg)
    assert entry["sha256"] == file_sha256(vgg)
    assert read_registry()["vgg19"]["path"] == str(vgg.resolve())
    # a VGG-16 file is not a VGG-19: refused, naming the file and the mismatch
    vgg16 = save_standin("vgg16", tmp_path / "vgg16.pth")
    with pytest.raises(MissingWeightsError, match=r"vgg16\.pth: does not fit vgg19"):
        add_weights("vgg19", vgg16)
    with pytest.raises(ValueError, match="unknown weights kind 'resnet'"):
        add_weights("resnet", vgg)
    assert set(read_registry()) == {"vgg19"}  # the refused adds wrote nothing


def test_detect_kind_by_structure(tmp_path: Path) -> None:
    assert detect_kind(save_standin("vgg19", tmp_path / "a.pth")) == "vgg19"
    assert detect_kind(save_standin("inception", tmp_path / "b.pth")) == "inception"
    assert detect_kind(save_standin("alexnet", tmp_path / "c.pth")) == "alexnet"
    assert detect_kind(save_tiny_clip(tmp_path / "clip")) == "clip"
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\xff" * 64)  # the "header too large" kind of file
    assert detect_kind(junk) is None


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    torch.save({"features.0.weight": torch.zeros(1), "fn": os.getcwd}, evil)
    with pytest.raises(MissingWeightsError, match="weights_only=True"):
        add_weights("vgg19", evil)


def test_check_rehashes_and_reports_each_entry(tmp_path: Path) -> None:
    vgg = add_weights("vgg19", save_standin("vgg19", tmp_path / "vgg19.pth"))["path"]
    inc = save_standin("inception", tmp_path / "inception.safetensors")  # saved as .pth bytes
    inc = tmp_path / "pt_inception.safetensors"
    save_file({k: v.contiguous() for k, v in torch.load(
        save_standin("inception", tmp_path / "i.pth"), weights_only=True).items()}, inc)
    add_weights("inception", inc)
    add_weights("clip", save_tiny_clip(tmp_path / "clip"))
    assert {r["kind"]: r["status"] for r in check_weights()} == {
        "vgg19": "ok", "inception": "ok", "clip": "ok"}
    save_standin("vgg19", Path(vgg), value=0.02)  # same structure, other bytes
    (tmp_path / "clip" / "model.safetensors").unlink()
    rows = {r["kind"]: r["status"] for r in check_weights()}
    assert rows["vgg19"].startswith("changed: sha256 differs")
    assert rows["clip"].startswith("changed")  # a folder's fingerprint covers its files
    assert rows["inception"] == "ok"


def test_cli_add_list_check(tmp_path: Path) -> None:
    vgg = save_standin("vgg19", tmp_path / "vgg19.pth")
    r = runner.invoke(app, ["weights", "add", "vgg19", str(vgg), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["sha256"] == file_sha256(vgg)
    r = runner.invoke(app, ["weights", "list", "--json"])
    rows = {x["kind"]: x for x in json.loads(r.output)["weights"]}
    assert rows["vgg19"]["path"] == str(vgg.resolve()) and "path" not in rows["inception"]
    assert runner.invoke(app, ["weights", "check"]).exit_code == 0
    vgg.unlink()
    r = runner.invoke(app, ["weights", "check", "--json"])
    assert r.exit_code == 1 and "missing" in json.loads(r.output)["weights"][0]["status"]
    r = runner.invoke(app, ["weights", "add", "inception", str(tmp_path / "nope.pth")])
    assert r.exit_code == 2 and "nope.pth: no such file" in r.output


def test_inception_found_through_the_registry_and_named(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="craftlora weights add inception PATH"):
        get_extractor("inception")
    path = add_weights("inception", save_standin("inception", tmp_path / "inc.pth"))["path"]
    ext = get_extractor("inception")
    assert str(ext.weights_path) == path and ext.weights_sha256 == file_sha256(path)
    assert ext.describe() == {"extractor": "inception", "weights_sha256": file_sha256(path)}


def test_perceptual_auto_goes_by_what_the_file_is(tmp_path: Path) -> None:
    vgg = save_standin("vgg19", tmp_path / "vgg19-dcbb9e9d.pth")
    # the lacquer example's bug: auto + a VGG .pth went to the classifier loader
    assert perceptual_kind("auto", vgg) == "vgg19"
    net = build_perceptual("auto", vgg)
    assert net.name == f"vgg19:{vgg}" and net.weights_sha256 == file_sha256(vgg)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(MissingWeightsError, match="junk.pth is neither a torchvision VGG-19"):
        perceptual_kind("auto", junk)
    # an explicit kind wins over detection
    assert perceptual_kind("classifier", vgg) == "classifier"
    # auto without a file: the registered VGG-19, else an error naming the command
    with pytest.raises(MissingWeightsError, match="craftlora weights add vgg19 PATH"):
        build_perceptual("auto", None)
    add_weights("vgg19", vgg)
    assert build_perceptual("auto", None).weights_sha256 == file_sha256(vgg)
