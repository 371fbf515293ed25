"""The safe loader: every mode ends as 8-bit RGB by the documented rule; bad files fail clearly."""

from __future__ import annotations

import hashlib
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from craftlora.data.imageio import BadImageError, load_rgb, sha256_file


def _px(im: Image.Image, xy=(0, 0)) -> tuple[int, ...]:
    assert im.mode == "RGB"
    return tuple(int(v) for v in np.asarray(im)[xy[1], xy[0]])


def test_sixteen_bit_grey_is_scaled_not_clamped(tmp_path):
    a = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    got = np.asarray(load_rgb(tmp_path / "g16.png"))[0, :, 0]
    # clamping would give [0, 255, 255, 255]
    assert got.tolist() == [0, 4, 128, 255]


def test_sixteen_bit_rgb(tmp_path):
    bgr = np.zeros((2, 2, 3), np.uint16)
    bgr[..., 2] = 65535
    bgr[..., 1] = 32896  # 128 * 257
    cv2.imwrite(str(tmp_path / "c16.png"), bgr)
    assert _px(load_rgb(tmp_path / "c16.png")) == (255, 128, 0)


@pytest.mark.parametrize("mode,color,expected", [
    ("RGBA", (255, 0, 0, 0), (255, 255, 255)),      # fully transparent → white
    ("RGBA", (255, 0, 0, 255), (255, 0, 0)),
    ("RGBA", (0, 0, 0, 128), (127, 127, 127)),      # half black over white
    ("LA", (0, 0), (255, 255, 255)),
    ("L", 77, (77, 77, 77)),
    ("1", 1, (255, 255, 255)),
])
def test_modes_become_rgb_on_white(tmp_path, mode, color, expected):
    Image.new(mode, (3, 3), color).save(tmp_path / "x.png")
    assert _px(load_rgb(tmp_path / "x.png")) == pytest.approx(expected, abs=1)


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([0, 0, 255, 10, 200, 10] + [0] * 762)
    im.putpixel((0, 0), 0)
    im.putpixel((1, 0), 1)
    im.save(tmp_path / "p.png", transparency=0)
    out = load_rgb(tmp_path / "p.png")
    assert _px(out, (0, 0)) == (255, 255, 255)
    assert _px(out, (1, 0)) == (10, 200, 10)


def test_cmyk_goes_through_its_icc_profile(tmp_path, red_cyan_icc):
    Image.new("CMYK", (4, 4), (255, 0, 0, 0)).save(tmp_path / "c.jpg", icc_profile=red_cyan_icc,
                                                   quality=100)
    r, g, b = _px(load_rgb(tmp_path / "c.jpg"))
    assert r > 200 and g < 120 and b < 120  # red by the profile; naive conversion gives cyan
    Image.new("CMYK", (4, 4), (255, 0, 0, 0)).save(tmp_path / "plain.jpg", quality=100)
    assert _px(load_rgb(tmp_path / "plain.jpg")) == pytest.approx((0, 255, 255), abs=3)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (16, 8), (0, 0, 0))
    im.paste((255, 0, 0), (0, 0, 4, 4))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    im.save(tmp_path / "o.jpg", exif=exif, quality=100, subsampling=0)
    out = load_rgb(tmp_path / "o.jpg")
    assert out.size == (8, 16)
    assert _px(out, (6, 1))[0] > 200  # the red corner moved to the top right
    assert _px(out, (1, 1))[0] < 50


def _bad(tmp_path, name: str, data: bytes, **kw) -> BadImageError:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(BadImageError) as e:
        load_rgb(tmp_path / name, **kw)
    assert e.value.path == str(tmp_path / name)
    assert str(e.value) == f"{tmp_path / name}: {e.value.reason}"
    return e.value


def _encoded(fmt: str, size=(32, 32)) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


def test_bad_files_name_their_fault(tmp_path):
    assert _bad(tmp_path, "e.png", b"").reason == "empty file"
    png, jpg = _encoded("PNG"), _encoded("JPEG")
    assert "truncated" in _bad(tmp_path, "t.png", png[: len(png) // 2]).reason
    assert "truncated" in _bad(tmp_path, "t.jpg", jpg[: len(jpg) // 2]).reason
    assert "not an image" in _bad(tmp_path, "n.jpg", b"hello, not a picture\n").reason
    # a valid image whose pixel count exceeds the configured limit
    bomb = _bad(tmp_path, "b.png", _encoded("PNG", (200, 100)), max_pixels=10_000)
    assert bomb.reason.startswith("decompression bomb") and "20000" in bomb.reason
    # a format outside the allowlist is refused even though Pillow could read it
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PPM")
    assert "not an image" in _bad(tmp_path, "x.png", buf.getvalue()).reason


def test_refuses_to_run_with_load_truncated_images(tmp_path, monkeypatch):
    from PIL import ImageFile

    (tmp_path / "t.png").write_bytes(_encoded("PNG")[:300])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        load_rgb(tmp_path / "t.png")


def _png_claiming(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [5000, 30000])  # under and over Pillow's own hard limit
def test_header_that_claims_a_huge_image_is_refused_before_decoding(tmp_path, side):
    err = _bad(tmp_path, "huge.png", _png_claiming(side, side), max_pixels=1_000_000)
    assert err.reason.startswith("decompression bomb")


def test_sha256_file(tmp_path):
    data = b"x" * 3_000_000
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
