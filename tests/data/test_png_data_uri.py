"""One helper turns an image into the data URI every HTML page embeds."""

import base64
import io

import numpy as np
from PIL import Image

from craftlora.data.imageio import png_data_uri


def _decode(uri: str) -> Image.Image:
    head, _, body = uri.partition(",")
    assert head == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(body)))


def test_array_image_and_bytes_round_trip():
    arr = np.zeros((4, 6, 3), np.uint8)
    arr[1, 2] = (200, 10, 30)
    back = np.asarray(_decode(png_data_uri(arr)).convert("RGB"))
    assert np.array_equal(back, arr)
    assert png_data_uri(Image.fromarray(arr)) == png_data_uri(arr)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    assert _decode(png_data_uri(buf.getvalue())).size == (6, 4)


def test_scale_enlarges_with_whole_pixels():
    arr = np.zeros((2, 2, 3), np.uint8)
    arr[0, 1] = 255
    big = np.asarray(_decode(png_data_uri(arr, 3)).convert("RGB"))
    assert big.shape == (6, 6, 3)
    assert (big[0:3, 3:6] == 255).all() and (big[0:3, 0:3] == 0).all()
