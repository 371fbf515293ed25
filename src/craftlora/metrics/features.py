"""Feature extractors by string id; every one says which network and weights it used.

``get_extractor(id, **kw)`` returns an object with ``.id``, ``.weights_sha256`` and
``.features(images) -> (N, D) float64``. Standard weights are found locally only (torch hub
cache or an explicit path); when they are missing the error names the file expected. Nothing is
downloaded and nothing silently swaps: a random-weight network must be asked for by name and its
id says so.

| id | network |
|---|---|
| ``inception`` | FID Inception-v3 pool3 (2048-d), clean-fid preprocessing |
| ``lpips-alex`` / ``lpips-vgg`` | LPIPS backbone (``.distance`` gives LPIPS itself) |
| ``clip`` | open_clip image tower, L2-normalised embedding |
| ``domain`` | the judge classifier's shared-projection input features |
| ``pixels`` | a 16×16 bicubic thumbnail (no network; a cheap in-domain baseline) |
"""

from __future__ import annotations

import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from craftlora.metrics.images import Images, as_rgb_list, resize_float
from craftlora.metrics.weights import (
    MissingWeightsError,
    combined_sha256,
    file_sha256,
    find_weights,
    load_state_dict,
)


class FeatureExtractor(ABC):
    """Images in, one feature row per image out."""

    id: str
    weights_sha256: str
    dim: int
    batch_size: int = 32

    def describe(self) -> dict[str, str]:
        """The fields every metric result carries."""
        return {"extractor": self.id, "weights_sha256": self.weights_sha256}

    def features(self, images: Images) -> np.ndarray:
        arrays = as_rgb_list(images)
        if not arrays:
            return np.zeros((0, self.dim), dtype=np.float64)
        out = [self._batch(arrays[i:i + self.batch_size])
               for i in range(0, len(arrays), self.batch_size)]
        return np.concatenate(out, axis=0).astype(np.float64)

    @abstractmethod
    def _batch(self, arrays: list[np.ndarray]) -> np.ndarray: ...


# --------------------------------------------------------------------------------------------
class InceptionExtractor(FeatureExtractor):
    """FID pool3 features with clean-fid conventions: PIL bicubic to 299² in float32, then
    (x − 128) / 128."""

    id = "inception"
    dim = 2048

    def __init__(self, weights: str | os.PathLike[str] | None = None, device: str = "cpu",
                 batch_size: int = 32):
        from craftlora.metrics.inception import WEIGHT_FILES, Pool3, fid_inception_v3

        path = find_weights(WEIGHT_FILES, explicit=weights, what="inception (FID)",
                            kind="inception")
        net = fid_inception_v3()
        sd = load_state_dict(path, what="inception (FID)")
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise MissingWeightsError(
                f"inception (FID): {path} does not match the FID Inception network: {e}"
            ) from e
        self.net = Pool3(net).eval().to(device)
        self.device = device
        self.batch_size = batch_size
        self.weights_path = path
        self.weights_sha256 = file_sha256(path)

    @torch.no_grad()
    def _batch(self, arrays: list[np.ndarray]) -> np.ndarray:
        x = np.stack([resize_float(a, (299, 299)) for a in arrays])
        t = torch.from_numpy((x - 128.0) / 128.0).permute(0, 3, 1, 2).float().to(self.device)
        return self.net(t).cpu().numpy()


# --------------------------------------------------------------------------------------------
_TV_FILES = {"alex": ("alexnet-owt-7be5be79.pth",), "vgg": ("vgg16-397923af.pth",)}
_TV_KINDS = {"alex": "alexnet", "vgg": "vgg16"}  # their kinds in ``craftlora weights``


class LpipsExtractor(FeatureExtractor):
    """LPIPS (Zhang et al. 2018, v0.1) with its ImageNet backbone read from the torchvision
    cache and its calibrated linear layers from the lpips package.

    ``weights="random"`` builds the same network with seeded random weights (id gets a
    ``-random`` suffix) — for testing protocols on machines without the backbone file.
    ``features`` are the channel-normalised, spatially averaged backbone activations of the five
    LPIPS layers, each scaled by its linear layer's weights' square root, concatenated.
    """

    def __init__(self, net: str = "alex", weights: str | os.PathLike[str] | None = None,
                 device: str = "cpu", batch_size: int = 32, seed: int = 0):
        import lpips

        if net not in _TV_FILES:
            raise ValueError(f"lpips net must be one of {sorted(_TV_FILES)}, not {net!r}")
        self.batch_size = batch_size
        self.device = device
        torch.manual_seed(seed)
        with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained`
            warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
            module = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
        if weights == "random":
            for lin in module.lins:  # non-negative layer weights keep distances ≥ 0
                lin.model[-1].weight.data.abs_()
            self.id = f"lpips-{net}-random"
            self.weights_sha256 = combined_sha256(["random", net, str(seed)])
        else:
            what = f"lpips-{net} backbone (torchvision {net} ImageNet weights)"
            path = find_weights(_TV_FILES[net], explicit=weights, what=what,
                                kind=_TV_KINDS[net])
            _load_backbone(module, net, load_state_dict(path, what=what))
            lin_path = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
            lin = load_state_dict(lin_path, what=f"lpips-{net} linear layers")
            missing = module.load_state_dict(lin, strict=False)
            if missing.unexpected_keys:
                raise MissingWeightsError(f"{lin_path}: unexpected keys {missing.unexpected_keys}")
            self.id = f"lpips-{net}"
            self.weights_sha256 = combined_sha256([file_sha256(path), file_sha256(lin_path)])
        self.module = module.eval().to(device)
        self.dim = sum(module.chns)

    @staticmethod
    def to_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
        """uint8 HxWx3 arrays of one size → (N, 3, H, W) float in [−1, 1]."""
        x = np.stack(arrays).astype(np.float32) / 127.5 - 1.0
        return torch.from_numpy(x).permute(0, 3, 1, 2)

    @torch.no_grad()
    def distance(self, a: Images, b: Images) -> np.ndarray:
        """LPIPS between paired images (same sizes pairwise) → (N,)."""
        xa, xb = as_rgb_list(a), as_rgb_list(b)
        if len(xa) != len(xb):
            raise ValueError(f"distance needs pairs: {len(xa)} vs {len(xb)} images")
        out = []
        for i in range(0, len(xa), self.batch_size):
            ta = self.to_tensor(xa[i:i + self.batch_size]).to(self.device)
            tb = self.to_tensor(xb[i:i + self.batch_size]).to(self.device)
            out.append(self.module(ta, tb).reshape(-1).cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    @torch.no_grad()
    def _batch(self, arrays: list[np.ndarray]) -> np.ndarray:
        m = self.module
        x = m.scaling_layer(self.to_tensor(arrays).to(self.device))
        feats = []
        for i, f in enumerate(m.net.forward(x)):
            f = f / (f.norm(dim=1, keepdim=True) + 1e-10)
            w = m.lins[i].model[-1].weight.reshape(1, -1).clamp(min=0).sqrt()
            feats.append(f.mean(dim=(2, 3)) * w)
        return torch.cat(feats, dim=1).cpu().numpy()


def _load_backbone(module: torch.nn.Module, net: str, sd: dict[str, torch.Tensor]) -> None:
    """Copy torchvision ``features.<i>.*`` tensors into lpips' ``slice<k>.<i>.*`` modules."""
    target = module.net.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for key in target:
        _, idx, rest = key.split(".", 2)
        src = f"features.{idx}.{rest}"
        if src not in sd:
            raise MissingWeightsError(f"lpips-{net}: backbone file lacks {src}")
        mapped[key] = sd[src]
    module.net.load_state_dict(mapped, strict=True)


# --------------------------------------------------------------------------------------------
class ClipExtractor(FeatureExtractor):
    """open_clip image embeddings (L2-normalised) from a local checkpoint file."""

    def __init__(self, checkpoint: str | os.PathLike[str] | None = None,
                 model: str = "ViT-B-32", device: str = "cpu", batch_size: int = 32):
        try:
            import open_clip
        except ImportError as e:
            raise MissingWeightsError(
                "clip: the Python package 'open_clip_torch' (module open_clip) is not "
                "installed; install it and pass a local checkpoint"
            ) from e
        if checkpoint is None or not Path(checkpoint).is_file():
            raise MissingWeightsError(
                f"clip: a local open_clip checkpoint for {model} is required "
                f"(got {checkpoint!r}); nothing is downloaded"
            )
        net, _, preprocess = open_clip.create_model_and_transforms(
            model, pretrained=str(checkpoint), device=device)
        self.net, self.preprocess = net.eval(), preprocess
        self.id = f"clip-{model}"
        self.weights_sha256 = file_sha256(checkpoint)
        self.device, self.batch_size = device, batch_size
        self.dim = int(net.visual.output_dim)

    @torch.no_grad()
    def _batch(self, arrays: list[np.ndarray]) -> np.ndarray:
        x = torch.stack([self.preprocess(Image.fromarray(a)) for a in arrays]).to(self.device)
        f = self.net.encode_image(x)
        return torch.nn.functional.normalize(f, dim=1).cpu().numpy()


# --------------------------------------------------------------------------------------------
class PixelExtractor(FeatureExtractor):
    """A ``size``×``size`` bicubic thumbnail in [0, 1], flattened: no learned weights."""

    def __init__(self, size: int = 16, batch_size: int = 256):
        self.size, self.batch_size = size, batch_size
        self.id = f"pixels{size}"
        self.weights_sha256 = "none"
        self.dim = size * size * 3

    def _batch(self, arrays: list[np.ndarray]) -> np.ndarray:
        s = (self.size, self.size)
        return np.stack([np.asarray(Image.fromarray(a).resize(s, Image.BICUBIC),
                                    dtype=np.float32).reshape(-1) / 255.0 for a in arrays])


# --------------------------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[..., FeatureExtractor]] = {}


def register(name: str, factory: Callable[..., FeatureExtractor]) -> None:
    """Add an extractor factory under a string id."""
    _REGISTRY[name] = factory


def list_extractors() -> list[str]:
    return sorted(_REGISTRY)


def get_extractor(id: str, **kw: Any) -> FeatureExtractor:
    """Build the extractor registered as ``id``; unknown ids and keywords are errors."""
    if id not in _REGISTRY:
        raise KeyError(f"unknown feature extractor {id!r}; known: {list_extractors()}")
    return _REGISTRY[id](**kw)


register("inception", InceptionExtractor)
register("lpips-alex", lambda **kw: LpipsExtractor(net="alex", **kw))
register("lpips-vgg", lambda **kw: LpipsExtractor(net="vgg", **kw))
register("clip", ClipExtractor)
register("pixels", PixelExtractor)
