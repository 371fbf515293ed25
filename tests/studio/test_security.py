"""Nothing outside what the catalog names is served: ids only, no paths, login honoured."""

from __future__ import annotations

import http.client
from pathlib import Path

import httpx
import pytest
from studio_live import LiveStudio


def _raw_get(port: int, path: str) -> tuple[int, bytes]:
    """A GET with the path sent exactly as written (no client-side ``..`` normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def test_images_by_id_only(live_studio, review_ws):
    rec = review_ws.catalog.images(set_name="syn")[0]
    r = httpx.get(f"{live_studio.url}/img/{rec.id}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == (review_ws.root / rec.path).read_bytes()
    assert httpx.get(f"{live_studio.url}/img/999999").status_code == 404


@pytest.mark.parametrize("path", [
    "/img/../../../../etc/passwd", "/img/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/img//etc/passwd",
    "/img/..%2fcatalog.sqlite", "/../../../../etc/passwd", "/gradio_api/file=/etc/passwd",
    "/gradio_api/file=../../../../etc/passwd", "/file=/etc/passwd",
    "/gradio_api/file={root}/catalog.sqlite", "/gradio_api/file={root}/craftlora.toml",
])
def test_paths_from_the_browser_read_nothing(live_studio, review_ws, path):
    root = Path(review_ws.root).resolve()
    status, body = _raw_get(live_studio.port, path.format(root=root))
    assert status != 200 or b"root:" not in body and b"SQLite format" not in body
    assert b"root:x:0:0" not in body and not body.startswith(b"SQLite format")
    assert b"[attributes" not in body


def test_images_need_the_login_when_auth_is_set(review_ws):
    studio = LiveStudio(review_ws.root, auth=("ann", "s3cret"))
    try:
        rec = review_ws.catalog.images(set_name="syn")[0]
        assert httpx.get(f"{studio.url}/img/{rec.id}").status_code == 401
        with httpx.Client(base_url=studio.url) as c:
            bad = c.post("/login", data={"username": "ann", "password": "wrong"})
            assert bad.status_code >= 400
            ok = c.post("/login", data={"username": "ann", "password": "s3cret"})
            assert ok.status_code == 200, ok.text
            assert c.get(f"/img/{rec.id}").status_code == 200
    finally:
        studio.stop()
