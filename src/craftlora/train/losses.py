"""Diffusion losses: ε / v targets, min-SNR-γ weights, pyramid noise, perceptual term on x̂₀."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from craftlora.metrics.weights import (
    MissingWeightsError,
    detect_kind,
    file_sha256,
    find_weights,
    load_state_dict,
)

VGG19_FILES = ("vgg19-dcbb9e9d.pth",)


def resolve_prediction_type(scheduler, configured: str) -> str:
    return str(scheduler.config.prediction_type) if configured == "auto" else configured


def target_for(scheduler, latents, noise, t, prediction_type: str) -> torch.Tensor:
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, t)
    raise ValueError(f"unsupported prediction_type {prediction_type!r}")


def pyramid_noise(noise: torch.Tensor, generator: torch.Generator, iterations: int,
                  discount: float) -> torch.Tensor:
    """Multi-resolution ("pyramid") noise for one sample ``noise`` (C, H, W), as kohya's
    ``multires_noise_iterations`` / ``multires_noise_discount``: level i adds standard noise
    drawn at H / r**i (r uniform in [2, 4)), upsampled bilinearly and weighted discount**i;
    the sum is rescaled to unit standard deviation. Coarse levels put low-frequency energy
    into the noise, which the standard schedule leaves too little of at high timesteps."""
    if noise.ndim != 3:
        raise ValueError(f"pyramid_noise takes one sample (C, H, W), not {tuple(noise.shape)}")
    c, h, w = noise.shape
    out = noise.clone()
    for i in range(1, iterations + 1):
        r = 2.0 + 2.0 * float(torch.rand((1,), generator=generator, device=noise.device))
        hh, ww = max(1, int(h / r**i)), max(1, int(w / r**i))
        low = torch.randn((1, c, hh, ww), generator=generator, device=noise.device,
                          dtype=noise.dtype)
        up = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)[0]
        out += up * discount**i
        if hh == 1 or ww == 1:
            break
    return out / out.std()


def _alphas(scheduler, t, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ac = scheduler.alphas_cumprod.to(like.device)[t].float()
    shape = (-1,) + (1,) * (like.ndim - 1)
    return ac.sqrt().view(shape), (1 - ac).sqrt().view(shape)


def snr(scheduler, t) -> torch.Tensor:
    ac = scheduler.alphas_cumprod.to(t.device)[t].float()
    return ac / (1 - ac)


def min_snr_weights(scheduler, t, gamma: float, prediction_type: str) -> torch.Tensor:
    """Per-sample weights of Hang et al.'s min-SNR-γ: min(SNR, γ)/SNR (ε), /(SNR+1) (v)."""
    s = snr(scheduler, t)
    clipped = torch.minimum(s, torch.full_like(s, gamma))
    return clipped / (s + 1) if prediction_type == "v_prediction" else clipped / s


def predicted_x0(scheduler, noisy, model_out, t, prediction_type: str) -> torch.Tensor:
    a, s = _alphas(scheduler, t, noisy)
    if prediction_type == "epsilon":
        return (noisy - s * model_out) / a
    return a * noisy - s * model_out


class PerceptualNet(torch.nn.Module):
    """Feature MSE over a frozen feature network; inputs are images in [-1, 1].

    ``name`` says which network and file (``vgg19:<path>``), ``weights_sha256`` its bytes: the
    run records both."""

    def __init__(self, layers: torch.nn.ModuleList, mean, std, name: str, weights_sha256: str):
        super().__init__()
        self.layers = layers
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.name = name
        self.weights_sha256 = weights_sha256
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x, y]).float()
        h = ((h + 1) / 2 - self.mean) / self.std
        loss = h.new_zeros(())
        for layer in self.layers:
            h = layer(h)
            a, b = h.chunk(2)
            loss = loss + F.mse_loss(a, b)
        return loss / len(self.layers)


def vgg19_perceptual(weights: Path) -> PerceptualNet:
    from torchvision.models import vgg19

    net = vgg19(weights=None)
    net.load_state_dict(load_state_dict(weights, what="VGG-19 (perceptual loss)"))
    feats = net.features
    cuts = [4, 9, 18, 27, 36]  # after relu1_2, relu2_2, relu3_4, relu4_4, relu5_4
    stages = torch.nn.ModuleList(
        torch.nn.Sequential(*feats[a:b]) for a, b in zip([0, *cuts[:-1]], cuts, strict=True)
    )
    return PerceptualNet(stages, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225],
                         f"vgg19:{weights}", file_sha256(weights))


def classifier_perceptual(path: Path) -> PerceptualNet:
    """The domain classifier's backbone (issue 4) as the feature network."""
    from craftlora.models.classifier import load_classifier

    model, _ = load_classifier(path)
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, torch.nn.Module):
        raise TypeError(f"{path}: the classifier has no backbone module to take features from")
    return PerceptualNet(torch.nn.ModuleList([backbone]), [0.485, 0.456, 0.406],
                         [0.229, 0.224, 0.225], f"classifier:{path}", file_sha256(path))


def perceptual_kind(network: str, weights: Path | None) -> str:
    """Which network a config means: an explicit ``vgg19``/``classifier`` wins; ``auto`` with a
    file goes by what the file is (a VGG-19 state dict, or a craftlora classifier checkpoint);
    ``auto`` without one takes VGG-19 (registered or in the torch cache)."""
    if network != "auto":
        return network
    if weights is None:
        return "vgg19"
    if not Path(weights).is_file():
        raise MissingWeightsError(f"loss.perceptual_weights: {weights} does not exist")
    if detect_kind(weights) == "vgg19":
        return "vgg19"
    from craftlora.models.classifier import ClassifierError, read_meta

    try:
        read_meta(weights)
    except ClassifierError as e:
        raise MissingWeightsError(
            f"loss.perceptual_weights: {weights} is neither a torchvision VGG-19 state dict "
            f"nor a craftlora classifier checkpoint ({e})") from e
    return "classifier"


def build_perceptual(network: str, weights: Path | None) -> PerceptualNet:
    """The perceptual loss's network (see ``perceptual_kind``); never downloads, and the chosen
    network and its weights' sha256 are recorded in run.json."""
    kind = perceptual_kind(network, weights)
    if kind == "vgg19":
        try:
            path = find_weights(VGG19_FILES, explicit=weights, what="VGG-19 (perceptual loss)",
                                kind="vgg19")
        except MissingWeightsError as e:
            raise MissingWeightsError(
                f"{e}. Alternatively set loss.perceptual_weights = <a craftlora classifier "
                "checkpoint> to use the domain classifier's backbone") from e
        return vgg19_perceptual(path)
    if weights is None:
        raise ValueError("loss.perceptual_network = 'classifier' needs loss.perceptual_weights")
    return classifier_perceptual(weights)
