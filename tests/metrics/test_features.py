"""The feature registry: ids, weights fingerprints, clear errors when weights are missing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from craftlora.metrics.features import get_extractor, list_extractors
from craftlora.metrics.inception import Pool3, fid_inception_v3
from craftlora.metrics.judge import Judge
from craftlora.metrics.weights import MissingWeightsError, file_sha256


def test_registry_lists_ids_and_rejects_unknown():
    assert {"inception", "lpips-alex", "lpips-vgg", "clip", "domain", "pixels"} <= set(
        list_extractors())
    with pytest.raises(KeyError, match="unknown feature extractor 'fid'"):
        get_extractor("fid")


def test_missing_inception_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="pt_inception-2015-12-05-6726825d.pth"):
        get_extractor("inception")
    with pytest.raises(MissingWeightsError, match="does not exist"):
        get_extractor("inception", weights=tmp_path / "nope.pth")


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """The FID network's layout with seeded random weights, saved like pytorch-fid's file."""
    torch.manual_seed(0)
    net = fid_inception_v3()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.fill_(1.0)
    path = tmp_path_factory.mktemp("hub") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), path)
    return path


def test_inception_loads_a_state_dict_file_and_gives_pool3(inception_file, tmp_path,
                                                           monkeypatch):
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / inception_file.name).symlink_to(inception_file)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    ext = get_extractor("inception")  # found in the torch hub checkpoints folder
    assert ext.id == "inception" and ext.weights_sha256 == file_sha256(inception_file)
    imgs = np.random.default_rng(0).integers(0, 256, (2, 40, 50, 3), dtype=np.uint8)
    f = ext.features(imgs)
    assert f.shape == (2, 2048) and np.isfinite(f).all()
    assert np.allclose(ext.features(list(imgs[:1])), f[:1], atol=1e-5)
    bad = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(MissingWeightsError, match="does not match the FID Inception"):
        get_extractor("inception", weights=bad)


def test_fid_network_matches_pytorch_fid_layout(inception_file):
    """Same weights file → same pool3 features as pytorch-fid's own network (when installed)."""
    pf = pytest.importorskip("pytorch_fid.inception")
    sd = torch.load(inception_file, weights_only=True)
    ours = fid_inception_v3()
    ours.load_state_dict(sd)
    # pytorch-fid's fid_inception_v3() downloads; assemble its FID blocks the same way offline
    net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pf.FIDInceptionE_1(1280)
    net.Mixed_7c = pf.FIDInceptionE_2(2048)
    net.load_state_dict(sd)
    theirs = pf.InceptionV3.__new__(pf.InceptionV3)
    torch.nn.Module.__init__(theirs)
    theirs.resize_input, theirs.normalize_input = False, False
    theirs.output_blocks, theirs.last_needed_block = [3], 3
    theirs.blocks = torch.nn.ModuleList([
        torch.nn.Sequential(net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3,
                            torch.nn.MaxPool2d(3, 2)),
        torch.nn.Sequential(net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, torch.nn.MaxPool2d(3, 2)),
        torch.nn.Sequential(net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a,
                            net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e),
        torch.nn.Sequential(net.Mixed_7a, net.Mixed_7b, net.Mixed_7c,
                            torch.nn.AdaptiveAvgPool2d(1)),
    ])
    x = torch.rand(2, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        a = Pool3(ours).eval()(x)
        b = theirs.eval()(x)[0].flatten(1)
    assert torch.allclose(a, b, atol=1e-4)


def test_clip_without_open_clip_names_the_package():
    try:
        import open_clip  # noqa: F401
    except ImportError:
        with pytest.raises(MissingWeightsError, match="open_clip_torch"):
            get_extractor("clip")
    else:
        with pytest.raises(MissingWeightsError, match="local open_clip checkpoint"):
            get_extractor("clip")


def test_pixels_extractor_is_deterministic():
    ext = get_extractor("pixels")
    img = Image.new("RGB", (40, 30), (255, 0, 0))
    f = ext.features([img, np.asarray(img)])
    assert f.shape == (2, 768) and ext.weights_sha256 == "none"
    assert np.allclose(f[0].reshape(16, 16, 3)[..., 0], 1.0) and np.allclose(f[0], f[1])


class _TinyJudge(torch.nn.Module):
    """Follows the classifier contract: ``features`` and a dict of logits per task."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.head = torch.nn.Linear(4, 2)

    def features(self, x):
        return self.conv(x).mean(dim=(2, 3))

    def forward(self, x):
        return {"glaze": self.head(self.features(x))}


def test_domain_extractor_reads_features_and_labels(tmp_path):
    torch.manual_seed(0)
    model = _TinyJudge()
    ckpt = tmp_path / "judge.safetensors"
    save_file(model.state_dict(), str(ckpt))
    judge = Judge(ckpt, model=model, meta={"config": {"image_size": 16},
                                           "labels": {"glaze": ["white", "black"]}})
    assert judge.id == "domain" and judge.weights_sha256 == file_sha256(ckpt)
    imgs = np.random.default_rng(0).integers(0, 256, (3, 20, 20, 3), dtype=np.uint8)
    feats, preds = judge.read(imgs)
    assert feats.shape == (3, 4) and np.allclose(feats, judge.features(imgs))
    assert all(set(p) == {"glaze"} and p["glaze"] in {"white", "black"} for p in preds)
    with pytest.raises(MissingWeightsError, match="no label lists"):
        Judge(ckpt, model=model, meta={"image_size": 16})
    with pytest.raises(MissingWeightsError, match="judge checkpoint"):
        get_extractor("domain", checkpoint=tmp_path / "missing.safetensors")


def test_domain_extractor_loads_a_saved_classifier(tmp_path):
    from craftlora.models.classifier import build_classifier, embed, predict, save_classifier

    torch.manual_seed(0)
    model = build_classifier("mobilenet_v3_small", {"glaze": ["white", "black"],
                                                    "type": ["bowl", "vase", "jar"]},
                             pretrained="none", image_size=32).eval()
    ckpt = tmp_path / "judge.safetensors"
    save_classifier(ckpt, model)
    ext = get_extractor("domain", checkpoint=ckpt)
    assert ext.describe() == {"extractor": "domain", "weights_sha256": file_sha256(ckpt),
                              "checkpoint": str(ckpt)}
    imgs = np.random.default_rng(1).integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)
    feats, preds = ext.read(imgs)
    assert feats.shape == (4, 256)
    assert np.allclose(feats, embed(model, imgs), atol=1e-5)
    assert preds == predict(model, imgs)
