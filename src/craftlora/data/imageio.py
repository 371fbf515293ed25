"""The one safe image loader every stage uses, and content hashing.

``load_rgb`` reads the file once, verifies it, opens it again and decodes it fully (truncated
files are errors, never padded), refuses images above a pixel limit before decoding them,
applies the EXIF orientation and returns an 8-bit RGB image: CMYK goes through its embedded ICC
profile to sRGB, anything with transparency is composited on white, 16-bit data is scaled to
8 bits rather than clamped.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

#: Formats the loader accepts; anything else is "not an image" even if Pillow could read it.
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
#: File name extensions treated as images when walking a folder (compared lower-case).
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)
#: Canonical extension per format, used for content-addressed copies.
FORMAT_EXTENSION = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "TIFF": ".tif",
    "GIF": ".gif",
}
DEFAULT_MAX_PIXELS = 40_000_000
_WHITE = (255, 255, 255)


class BadImageError(ValueError):
    """A file that is not a usable image; ``reason`` says why in a few words."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def load_rgb(
    path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Load ``path`` as an 8-bit RGB image, or raise BadImageError naming the file and fault."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BadImageError(path, f"cannot read: {e.strerror or e}") from e
    image, _ = decode_rgb(data, path, max_pixels=max_pixels)
    return image


def decode_rgb(
    data: bytes, path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[Image.Image, str]:
    """Decode image bytes (``path`` only names them in errors); return (RGB image, format)."""
    if not data:
        raise BadImageError(path, "empty file")
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set (by other code in this "
                           "process); craftlora refuses to decode images that way")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=FORMATS) as probe:
                _check_pixels(path, probe.size, max_pixels)
                probe.verify()
            im = Image.open(io.BytesIO(data), formats=FORMATS)
            _check_pixels(path, im.size, max_pixels)
            fmt = str(im.format)
            im.load()
        except BadImageError:
            raise
        except UnidentifiedImageError as e:
            raise BadImageError(
                path, f"not an image in an allowed format ({', '.join(FORMATS)})"
            ) from e
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise BadImageError(path, f"decompression bomb (limit {max_pixels} pixels): {e}") from e
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            msg = str(e) or type(e).__name__
            if "truncat" in msg.lower() or isinstance(e, EOFError):
                raise BadImageError(path, f"truncated image data ({msg})") from e
            raise BadImageError(path, f"corrupt image data ({msg})") from e
    try:
        im = ImageOps.exif_transpose(im) or im
        return to_rgb(im), fmt
    except (OSError, ValueError, ImageCms.PyCMSError) as e:
        raise BadImageError(path, f"cannot convert {im.mode} image to RGB ({e})") from e


def _check_pixels(path: str | os.PathLike[str], size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise BadImageError(path, f"invalid size {w}x{h}")
    if w * h > max_pixels:
        raise BadImageError(
            path,
            f"decompression bomb: {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels}",
        )


def to_rgb(im: Image.Image) -> Image.Image:
    """Any decoded Pillow image → 8-bit RGB (see the module docstring for the rules)."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "CMYK":
        icc = im.info.get("icc_profile")
        if icc:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
        return im.convert("RGB")  # no profile: Pillow's naive CMYK→RGB, the only option
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _scale_to_8bit(im).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")  # L, P, 1, YCbCr, LAB, HSV


def _scale_to_8bit(im: Image.Image) -> Image.Image:
    """16-bit (or 32-bit int / float) grey → 8-bit L by scaling the full range, not clamping."""
    a = np.asarray(im)
    if im.mode == "F":
        a = a.astype(np.float64)
        top = 1.0 if a.size == 0 or float(np.nanmax(a)) <= 1.0 else float(np.nanmax(a))
        scaled = np.clip(np.nan_to_num(a) / top, 0.0, 1.0) * 255.0
    else:
        a = a.astype(np.int64)
        top = 65535 if a.size == 0 or int(a.max()) <= 65535 else 2**31 - 1
        scaled = np.clip(a, 0, None) * (255.0 / top)
    return Image.fromarray(np.rint(scaled).astype(np.uint8), mode="L")


def png_data_uri(im: Image.Image | np.ndarray | bytes, scale: int = 1) -> str:
    """A ``data:image/png;base64,…`` URI for an HTML page: PNG bytes as they are, an image
    (PIL or uint8 array) encoded, enlarged ``scale`` times with nearest-neighbour pixels."""
    if not isinstance(im, bytes):
        im = im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im, np.uint8))
        if scale != 1:
            im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        im = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(im).decode()
