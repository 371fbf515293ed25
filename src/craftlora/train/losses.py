"""Diffusion losses: ε / v targets, min-SNR-γ weights, pyramid noise, perceptual term on x̂₀."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

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
    """Feature MSE over a frozen feature network; inputs are images in [-1, 1]."""

    def __init__(self, layers: torch.nn.ModuleList, mean, std, name: str):
        super().__init__()
        self.layers = layers
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.name = name
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
    sd = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict(sd)
    feats = net.features
    cuts = [4, 9, 18, 27, 36]  # after relu1_2, relu2_2, relu3_4, relu4_4, relu5_4
    stages = torch.nn.ModuleList(
        torch.nn.Sequential(*feats[a:b]) for a, b in zip([0, *cuts[:-1]], cuts, strict=True)
    )
    return PerceptualNet(stages, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], f"vgg19:{weights}")


def classifier_perceptual(path: Path) -> PerceptualNet:
    """The domain classifier's backbone (issue 4) as the feature network."""
    from craftlora.models.classifier import load_classifier

    loaded, _ = load_classifier(path)  # (model, metadata)
    backbone = getattr(loaded, "backbone", None) or getattr(loaded, "features", None)
    if not isinstance(backbone, torch.nn.Module):
        raise TypeError(f"{path}: load_classifier() gave no backbone module to take features from")
    return PerceptualNet(torch.nn.ModuleList([backbone]), [0.485, 0.456, 0.406],
                         [0.229, 0.224, 0.225], f"classifier:{path}")


def build_perceptual(network: str, weights: Path | None) -> PerceptualNet:
    """VGG-19 when its weights are on this machine; else the domain classifier; else an error.

    ``network='auto'`` takes VGG-19 if found, then a classifier path if given; it never
    downloads and the chosen network is recorded in run.json.
    """
    from craftlora.metrics.weights import MissingWeightsError, find_weights

    if network in ("auto", "vgg19"):
        try:
            vgg = find_weights(VGG19_FILES, explicit=weights if network == "vgg19" else None,
                               what="VGG-19 (perceptual loss)")
            return vgg19_perceptual(vgg)
        except MissingWeightsError as e:
            if network == "vgg19" or weights is None:
                raise MissingWeightsError(
                    f"{e}. Alternatively set loss.perceptual_network = 'classifier' and "
                    "loss.perceptual_weights = <a craftlora classifier checkpoint>"
                ) from e
    if weights is None:
        raise ValueError("loss.perceptual_network = 'classifier' needs loss.perceptual_weights")
    return classifier_perceptual(weights)
