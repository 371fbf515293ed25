"""The multi-task classifier: one backbone, a shared projection, one linear head per attribute.

Hard parameter sharing as in the porcelain study's released code: backbone features → 512 → 256
(ReLU, dropout 0.5 / 0.35) → one linear head per task. Backbones come by name from torchvision
(``mobilenet_v3_large``, ``mobilenet_v3_small``, ``resnet18`` ...) or by timm-style name
(``mobilenetv3_large_100`` → torchvision's ``mobilenet_v3_large``; any other timm name is built
by timm when it is installed). ImageNet weights are used only when the file is already in the
local torch hub cache; otherwise the backbone starts from random init, and
``model.weights_source`` says which.

``model.features(x)`` returns the 256-d output of the shared projection (dropout off in eval
mode): the embedding that was trained on the domain's labels, used as the ``domain`` feature for
FD. Checkpoints are safetensors whose metadata carries the config, the label lists and the
preprocessing (input size, normalisation).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURE_DIM = 256
META_KEY = "craftlora_classifier"

#: timm-style names that map onto a torchvision backbone of the same architecture.
TIMM_ALIASES = {
    "mobilenetv3_large_100": "mobilenet_v3_large",
    "mobilenetv3_small_100": "mobilenet_v3_small",
    "resnet18": "resnet18",
    "resnet50": "resnet50",
    "efficientnet_b0": "efficientnet_b0",
    "mobilenetv2_100": "mobilenet_v2",
}


class ClassifierError(RuntimeError):
    """A backbone name, weights file or checkpoint that cannot be used; the message says why."""


def _strip_head(model: nn.Module, name: str) -> int:
    """Replace the backbone's final Linear classifier with Identity; return its input width."""
    for attr in ("classifier", "fc", "head", "heads"):
        head = getattr(model, attr, None)
        if head is None:
            continue
        if isinstance(head, nn.Linear):
            setattr(model, attr, nn.Identity())
            return int(head.in_features)
        if isinstance(head, nn.Sequential):
            linears = [i for i, m in enumerate(head) if isinstance(m, nn.Linear)]
            if linears:
                last = linears[-1]
                width = int(head[last].in_features)
                head[last] = nn.Identity()
                return width
    raise ClassifierError(f"backbone {name!r}: no final Linear classifier found to replace")


def hub_weights_path(backbone: str) -> tuple[Path, Any] | None:
    """(local file, torchvision weights enum) for a torchvision backbone's ImageNet weights."""
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(backbone).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return None
    fname = os.path.basename(weights.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / fname, weights


def _torchvision_backbone(name: str, pretrained: str) -> tuple[nn.Module, int, str]:
    import torchvision

    if name not in torchvision.models.list_models():
        raise ClassifierError(
            f"unknown backbone {name!r}; torchvision has e.g. mobilenet_v3_large, "
            "mobilenet_v3_small, resnet18, efficientnet_b0"
        )
    model = torchvision.models.get_model(name, weights=None)
    source = "random-init"
    if pretrained in ("auto", "imagenet"):
        found = hub_weights_path(name)
        if found is not None and found[0].is_file():
            state = torch.load(found[0], map_location="cpu", weights_only=True)
            model.load_state_dict(state)
            source = f"imagenet:{found[0].name}"
        elif pretrained == "imagenet":
            where = found[0] if found else "the torch hub cache"
            raise ClassifierError(
                f"backbone {name!r}: ImageNet weights requested but {where} does not exist; "
                "put the file there or use pretrained='none'"
            )
    if source == "random-init":
        _fast_batchnorm_stats(model)
    width = _strip_head(model, name)
    return model, width, source


def _fast_batchnorm_stats(model: nn.Module) -> None:
    """BatchNorm running statistics with PyTorch's default momentum (0.1).

    torchvision's MobileNetV3 and EfficientNet use 0.01, tuned for long ImageNet runs. From
    random init on a few thousand images the running statistics then lag the weights by
    several epochs and evaluation stays at chance level meanwhile (measured: validation F1 at
    chance for the first 5 of 14 epochs on mini-kiln). Training itself does not read them.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.1


def _timm_backbone(name: str, pretrained: str) -> tuple[nn.Module, int, str]:
    try:
        import timm
    except ImportError as e:
        raise ClassifierError(
            f"unknown backbone {name!r}: not a torchvision model, and timm is not installed"
        ) from e
    if pretrained == "imagenet":
        raise ClassifierError(f"backbone {name!r}: timm weights need the hub; not supported here")
    model = timm.create_model(name, pretrained=False, num_classes=0)
    return model, int(model.num_features), "random-init"


def build_backbone(name: str, pretrained: str = "auto") -> tuple[nn.Module, int, str]:
    """(backbone returning pooled features, feature width, weights source) for a name."""
    if pretrained not in ("auto", "imagenet", "none"):
        raise ClassifierError(
            f"pretrained must be 'auto', 'imagenet' or 'none', not {pretrained!r}")
    import torchvision

    tv_name = TIMM_ALIASES.get(name, name)
    if tv_name in torchvision.models.list_models():
        return _torchvision_backbone(tv_name, pretrained)
    return _timm_backbone(name, pretrained)


class MultiTaskClassifier(nn.Module):
    """Backbone → shared projection (→512→256) → one linear head per task."""

    def __init__(
        self,
        backbone: nn.Module,
        feature_width: int,
        tasks: Mapping[str, Sequence[str]],
        *,
        config: Mapping[str, Any],
        weights_source: str,
    ):
        super().__init__()
        if not tasks:
            raise ClassifierError("a classifier needs at least one task")
        self.backbone = backbone
        self.projection = nn.Sequential(
            nn.Linear(feature_width, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(512, FEATURE_DIM),
            nn.ReLU(inplace=True),
            nn.Dropout(0.35),
        )
        # a list in task order: task names such as "type" clash with nn.Module attributes
        self.heads = nn.ModuleList(
            [nn.Linear(FEATURE_DIM, len(labels)) for labels in tasks.values()])
        self.tasks: dict[str, list[str]] = {t: list(v) for t, v in tasks.items()}
        self.config: dict[str, Any] = dict(config)
        self.weights_source = weights_source
        for m in [*self.projection, *self.heads]:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    @property
    def mean(self) -> tuple[float, float, float]:
        return tuple(self.config["mean"])  # type: ignore[return-value]

    @property
    def std(self) -> tuple[float, float, float]:
        return tuple(self.config["std"])  # type: ignore[return-value]

    def head_parameters(self) -> list[nn.Parameter]:
        return [*self.projection.parameters(), *self.heads.parameters()]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The shared 256-d projection of a normalised batch (N, 3, H, W) → (N, 256)."""
        return self.projection(self.backbone(x).flatten(1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.features(x)
        return {t: head(z) for t, head in zip(self.tasks, self.heads, strict=True)}


def build_classifier(
    backbone: str = "mobilenet_v3_large",
    tasks: Mapping[str, Sequence[str]] | None = None,
    pretrained: str = "auto",
    *,
    image_size: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> MultiTaskClassifier:
    """A fresh classifier for ``tasks`` (task → label list) on the named backbone."""
    net, width, source = build_backbone(backbone, pretrained)
    config = {
        "backbone": backbone,
        "image_size": int(image_size),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "feature": "shared projection output (256-d, after ReLU)",
    }
    return MultiTaskClassifier(net, width, tasks or {}, config=config, weights_source=source)


def save_classifier(path: str | os.PathLike[str], model: MultiTaskClassifier,
                    meta: Mapping[str, Any] | None = None) -> None:
    """Write weights as safetensors (atomically) with config, labels and preprocessing."""
    full = {
        **dict(meta or {}),
        "backbone": model.config["backbone"],
        "tasks": model.tasks,
        "image_size": model.image_size,
        "mean": list(model.mean),
        "std": list(model.std),
        "weights_source": model.weights_source,
        "config": model.config,
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        save_file(state, str(tmp), metadata={META_KEY: json.dumps(full, default=str)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a classifier checkpoint, without loading the weights."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise ClassifierError(f"{path}: not a readable safetensors file: {e}") from e
    if raw is None:
        raise ClassifierError(f"{path}: no craftlora classifier metadata ({META_KEY!r})")
    return json.loads(raw)


def load_classifier(path: str | os.PathLike[str]) -> tuple[MultiTaskClassifier, dict[str, Any]]:
    """(model in eval mode, metadata) from a checkpoint written by ``save_classifier``."""
    path = Path(path)
    if not path.is_file():
        raise ClassifierError(f"{path}: classifier checkpoint not found")
    meta = read_meta(path)
    cfg = meta["config"]
    model = build_classifier(
        cfg["backbone"], meta["tasks"], pretrained="none",
        image_size=cfg["image_size"], mean=cfg["mean"], std=cfg["std"],
    )
    model.weights_source = meta.get("weights_source", "unknown")
    state = load_file(str(path))
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ClassifierError(f"{path}: non-finite values in {bad[:3]}")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ClassifierError(f"{path}: weights do not fit the recorded config: {e}") from e
    return model.eval(), meta


# -- inference helpers ---------------------------------------------------------------------
def to_uint8_batch(images: Sequence[Image.Image] | np.ndarray, size: int) -> torch.Tensor:
    """PIL images or an (N, H, W, 3) uint8 array → (N, 3, size, size) uint8 tensor."""
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ClassifierError(f"expected an (N, H, W, 3) array, got shape {images.shape}")
        arr = images.astype(np.uint8, copy=False)
        t = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2)
        if t.shape[-2:] != (size, size):
            t = torch.nn.functional.interpolate(
                t.float(), size=(size, size), mode="bilinear", antialias=True,
                align_corners=False,
            ).round().clamp(0, 255).to(torch.uint8)
        return t
    out = []
    for im in images:
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        out.append(torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1))
    if not out:
        return torch.zeros(0, 3, size, size, dtype=torch.uint8)
    return torch.stack(out)


def normalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N, 3, H, W) → float, scaled to [0, 1] then normalised per channel."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x.float() / 255.0 - m) / s


@torch.no_grad()
def predict_logits(model: MultiTaskClassifier,
                   images: Sequence[Image.Image] | np.ndarray | torch.Tensor,
                   batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Logits per task for images (PIL list, uint8 array or uint8 (N,3,H,W) tensor)."""
    x = images if isinstance(images, torch.Tensor) else to_uint8_batch(images, model.image_size)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {t: [] for t in model.tasks}
    for i in range(0, len(x), batch_size):
        out = model(normalise(x[i:i + batch_size], model.mean, model.std).to(device))
        for t, v in out.items():
            parts[t].append(v.cpu())
    model.train(was_training)
    return {t: torch.cat(v) if v else torch.zeros(0, len(model.tasks[t]))
            for t, v in parts.items()}


def predict(model: MultiTaskClassifier, images: Sequence[Image.Image] | np.ndarray,
            batch_size: int = 256) -> list[dict[str, str]]:
    """The predicted label per task for each image."""
    logits = predict_logits(model, images, batch_size)
    n = len(next(iter(logits.values())))
    idx = {t: v.argmax(1).tolist() for t, v in logits.items()}
    return [{t: model.tasks[t][idx[t][i]] for t in model.tasks} for i in range(n)]


@torch.no_grad()
def embed(model: MultiTaskClassifier, images: Sequence[Image.Image] | np.ndarray,
          batch_size: int = 256) -> np.ndarray:
    """``model.features`` (the 256-d shared projection) for images, as float64 (N, 256)."""
    x = to_uint8_batch(images, model.image_size)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [model.features(normalise(x[i:i + batch_size], model.mean, model.std).to(device)).cpu()
           for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out).double().numpy() if out else np.zeros((0, FEATURE_DIM))
