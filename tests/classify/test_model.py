import numpy as np
import pytest
import torch
from PIL import Image

from craftlora.models.classifier import (
    ClassifierError,
    build_classifier,
    embed,
    load_classifier,
    predict,
    predict_logits,
    save_classifier,
)

TASKS = {"dynasty": ["Song", "Yuan"], "type": ["bowl", "vase", "jar"]}


def small():
    torch.manual_seed(0)
    return build_classifier("mobilenet_v3_small", TASKS, pretrained="none", image_size=32)


def test_forward_features_and_heads():
    m = small().eval()
    x = torch.randn(3, 3, 32, 32)
    out = m(x)
    assert set(out) == {"dynasty", "type"}  # "type" would clash with nn.Module.type
    assert out["dynasty"].shape == (3, 2) and out["type"].shape == (3, 3)
    assert m.features(x).shape == (3, 256)
    assert m.weights_source == "random-init"


def test_save_load_roundtrip(tmp_path):
    m = small().eval()
    path = tmp_path / "c.safetensors"
    save_classifier(path, m, {"role": "test"})
    m2, meta = load_classifier(path)
    assert meta["tasks"] == TASKS and meta["image_size"] == 32 and meta["role"] == "test"
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406])
    x = torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8)
    a, b = predict_logits(m, x), predict_logits(m2, x)
    for t in TASKS:
        assert torch.allclose(a[t], b[t])
    assert not list(tmp_path.glob(".tmp-*"))


def test_predict_on_pil_and_arrays_resizes():
    m = small()
    ims = [Image.new("RGB", (50, 40), (200, 10, 10)), Image.new("L", (32, 32), 90)]
    labels = predict(m, ims)
    assert len(labels) == 2 and labels[0]["type"] in TASKS["type"]
    arr = np.zeros((3, 20, 20, 3), dtype=np.uint8)
    assert len(predict(m, arr)) == 3
    assert embed(m, arr).shape == (3, 256)


def test_bad_inputs(tmp_path):
    with pytest.raises(ClassifierError, match="unknown backbone"):
        build_classifier("no_such_net", TASKS)
    with pytest.raises(ClassifierError, match="pretrained"):
        build_classifier("mobilenet_v3_small", TASKS, pretrained="maybe")
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ClassifierError, match="x.safetensors"):
        load_classifier(bad)
    with pytest.raises(ClassifierError, match="not found"):
        load_classifier(tmp_path / "missing.safetensors")


def test_imagenet_required_but_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ClassifierError, match="does not exist"):
        build_classifier("mobilenet_v3_small", TASKS, pretrained="imagenet")


def test_timm_alias_maps_to_torchvision():
    m = build_classifier("mobilenetv3_small_100", TASKS, pretrained="none", image_size=32)
    assert m.features(torch.randn(2, 3, 32, 32)).shape == (2, 256)


@torch.no_grad()
def test_random_init_batchnorm_statistics_catch_up_within_20_batches():
    # torchvision's MobileNetV3 keeps BN momentum 0.01: after 20 batches its running mean would
    # have covered only 18 % of the way to the data's mean, and eval-mode scores of a short
    # from-scratch run stay at chance level for epochs.
    m = small().train()
    bn = next(x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d))
    seen = []
    bn.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].mean((0, 2, 3))))
    for _ in range(20):
        m(torch.randn(8, 3, 32, 32) * 2 + 3)
    target = torch.stack(seen).mean(0)
    covered = (bn.running_mean / target).median().item()
    assert covered > 0.8
