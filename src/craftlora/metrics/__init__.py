"""Image-set metrics: feature extractors by id, FD/KID, precision/recall, LPIPS diversity,
contour adherence and attribute agreement. Every figure names its extractor and weights."""

from craftlora.metrics import judge  # noqa: F401  registers the "domain" extractor
