"""Style-transfer metrics: HFRD, colour-histogram distance, and the stitch world's exact ones.

- **HFRD** (high-frequency ratio difference) = |HF(output) − HF(reference)|, with HF the share of
  the grey image's spectral power (mean removed) above a radial cutoff of **0.25 × Nyquist**
  (our choice; the paper does not state one). Lower = stitch texture as fine as the reference's.
- **hist**: half the L1 distance of the normalised 8×8×8 RGB histograms (= 1 − intersection),
  output vs design: 0 = the design's colours kept.
- **mask IoU**: the output's foreground (pixels farther than 0.25 in RGB from the design's
  ground colour, closed over 1 px to bridge stitch gaps) against the design's exact mask.
- **content distance**: LPIPS (AlexNet) when its ImageNet backbone is on this machine, else
  1 − cosine of the shipped domain judge's features (``FeatureDistance``; its id is recorded).
- **style agreement**: a nearest-centroid classifier on oriented spectral features, fitted on
  the stitch world's rendered embroidery (exact labels), agrees with the reference's style.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.ndimage import binary_closing

from craftlora.metrics.features import get_extractor
from craftlora.metrics.judge import Judge
from craftlora.metrics.weights import MissingWeightsError

HF_CUTOFF = 0.25


def _grey(img: np.ndarray) -> np.ndarray:
    return (np.asarray(img, dtype=np.float64)[..., :3] / 255.0) @ np.array([0.299, 0.587, 0.114])


def _power(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = _grey(img)
    p = np.abs(np.fft.fft2(g - g.mean())) ** 2
    fy = np.fft.fftfreq(g.shape[0])[:, None]
    fx = np.fft.fftfreq(g.shape[1])[None, :]
    return p, np.hypot(fy, fx) / 0.5, np.arctan2(fy, fx) % np.pi


def hf_ratio(img: np.ndarray, cutoff: float = HF_CUTOFF) -> float:
    p, r, _ = _power(img)
    total = p.sum()
    return float(p[r > cutoff].sum() / total) if total > 0 else 0.0


def hfrd(output: np.ndarray, reference: np.ndarray, cutoff: float = HF_CUTOFF) -> float:
    return abs(hf_ratio(output, cutoff) - hf_ratio(reference, cutoff))


def hist_distance(a: np.ndarray, b: np.ndarray, bins: int = 8) -> float:
    def h(x):
        q = (np.asarray(x)[..., :3].reshape(-1, 3).astype(np.int64) * bins) // 256
        c = np.bincount((q[:, 0] * bins + q[:, 1]) * bins + q[:, 2], minlength=bins**3)
        return c / c.sum()

    return float(0.5 * np.abs(h(a) - h(b)).sum())


def ground_colour(design: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.median(np.asarray(design, dtype=np.float64)[~mask] / 255.0, axis=0)


def foreground(img: np.ndarray, ground: np.ndarray, thr: float = 0.25) -> np.ndarray:
    d = np.linalg.norm(np.asarray(img, dtype=np.float64)[..., :3] / 255.0 - ground, axis=-1)
    return binary_closing(d > thr, iterations=1)


def mask_iou(img: np.ndarray, design: np.ndarray, mask: np.ndarray) -> float:
    fg = foreground(img, ground_colour(design, mask))
    union = (fg | mask).sum()
    return float((fg & mask).sum() / union) if union else 1.0


def texture_features(img: np.ndarray, radial: int = 6, angular: int = 4) -> np.ndarray:
    """Normalised spectral power in radial × angular bins, plus the HF ratio."""
    p, r, a = _power(img)
    ri = np.minimum((r * radial / np.sqrt(2)).astype(int), radial - 1)
    ai = np.minimum((a * angular / np.pi).astype(int), angular - 1)
    f = np.bincount((ri * angular + ai).ravel(), weights=p.ravel(), minlength=radial * angular)
    f = np.log1p(f / max(p.sum(), 1e-12) * 100)
    return np.concatenate([f, [hf_ratio(img)]])


class StyleClassifier:
    """Nearest centroid on standardised ``texture_features``."""

    def __init__(self, images: Sequence[np.ndarray], labels: Sequence[str]):
        x = np.stack([texture_features(i) for i in images])
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-6
        z = (x - self.mu) / self.sd
        self.classes = sorted(set(labels))
        lab = np.asarray(labels)
        self.centroids = np.stack([z[lab == c].mean(0) for c in self.classes])

    def predict(self, images: Sequence[np.ndarray]) -> list[str]:
        z = (np.stack([texture_features(i) for i in images]) - self.mu) / self.sd
        d = ((z[:, None, :] - self.centroids[None]) ** 2).sum(-1)
        return [self.classes[i] for i in d.argmin(1)]


class FeatureDistance:
    """1 − cosine similarity of a feature extractor's vectors: the content distance used when
    LPIPS's ImageNet backbone is not on this machine (``id`` names the network)."""

    def __init__(self, extractor):
        self.extractor = extractor
        d = extractor.describe()
        name = extractor.id + (f":{Path(d['checkpoint']).stem}" if "checkpoint" in d else "")
        self.id = f"{name} (sha256 {d['weights_sha256'][:12]}) feature cosine distance"

    def distance(self, a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> np.ndarray:
        fa, fb = self.extractor.features(list(a)), self.extractor.features(list(b))
        fa = fa / (np.linalg.norm(fa, axis=1, keepdims=True) + 1e-12)
        fb = fb / (np.linalg.norm(fb, axis=1, keepdims=True) + 1e-12)
        return 1.0 - (fa * fb).sum(1)


def content_net(lpips_name: str = "lpips-alex", fallback_checkpoint=None):
    """LPIPS when its weights are here; else the shipped domain judge's feature distance."""
    try:
        return get_extractor(lpips_name)
    except MissingWeightsError:
        if fallback_checkpoint is None:
            raise
        return FeatureDistance(Judge(fallback_checkpoint))
