"""`Url` inputs against a hostile web server on loopback: SSRF refusals, redirect limits, size caps and a
strict deadline even when the server drips one byte at a time."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from facecloud.errors import ApiError
from facecloud.vision import image
from tests.conftest import need_data

LOOPBACK = "127.0.0.1/32"


class Hostile(BaseHTTPRequestHandler):
    face: bytes = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path
        if path == "/face.jpg":
            self._send(200, self.face, "image/jpeg")
        elif path.startswith("/redirect/"):
            hops = int(path.rsplit("/", 1)[1])
            self._redirect("/face.jpg" if hops == 0 else f"/redirect/{hops - 1}")
        elif path == "/to-other-loopback":
            self._redirect(f"http://127.0.0.2:{self.server.server_port}/face.jpg")
        elif path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/to-file":
            self._redirect("file:///etc/passwd")
        elif path == "/huge-declared":
            self.send_response(200)
            self.send_header("Content-Length", str(50 * 1024 * 1024))
            self.end_headers()
            self.wfile.write(b"\xff" * 1024)
        elif path == "/huge-chunked":
            self.send_response(200)
            self.end_headers()  # no length: the body runs until the server closes
            for _ in range(6 * 1024):
                self.wfile.write(b"\xff" * 1024)
        elif path == "/drip-headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            self._drip(b"X-Slow: " + b"a" * 100)
        elif path == "/drip-body":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self._drip(b"\xff" * 1000)
        else:
            self._send(404, b"no", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _drip(self, data: bytes) -> None:
        try:
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass  # the fetcher hung up, as it should


@pytest.fixture(scope="module")
def hostile():  # type: ignore[no-untyped-def]
    lfw = need_data("lfw-dev", "lfw-deepfunneled")
    Hostile.face = next(iter(sorted(lfw.glob("*/*.jpg")))).read_bytes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _fetch_code(url: str, allow: str = LOOPBACK, timeout_s: float = 1.0) -> str:
    with pytest.raises(ApiError) as err:
        image.fetch_url(url, timeout_s=timeout_s, allow_cidrs=allow)
    return err.value.code


def test_allowed_loopback_fetch_and_redirects(hostile):
    assert image.fetch_url(hostile + "/face.jpg", timeout_s=2, allow_cidrs=LOOPBACK) == Hostile.face
    assert image.fetch_url(hostile + f"/redirect/{image.MAX_REDIRECTS - 1}", timeout_s=2, allow_cidrs=LOOPBACK)
    assert _fetch_code(hostile + f"/redirect/{image.MAX_REDIRECTS}") == "FailedOperation.ImageDownloadError"


def test_loopback_refused_without_allow_list(hostile):
    assert _fetch_code(hostile + "/face.jpg", allow="") == "FailedOperation.ImageDownloadError"


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "127.0.0.2",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "2130706433",
        "0x7f000001",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[fe80::1]",
        "[fc00::1]",
        "[64:ff9b::a00:1]",
        "[2002:a00:1::]",
    ],
)
def test_private_addresses_are_refused_before_connecting(host, monkeypatch):
    connects = _record_connects(monkeypatch)
    assert _fetch_code(f"http://{host}:9/x.jpg", allow="") == "FailedOperation.ImageDownloadError"
    assert connects == []


def test_an_allowed_address_is_connected_to(monkeypatch):
    """The control of the test above: its recorder sees the fetcher's connections."""
    connects = _record_connects(monkeypatch)
    assert _fetch_code("http://127.0.0.1:9/x.jpg") == "FailedOperation.ImageDownloadError"  # nothing listens there
    assert connects


def _record_connects(monkeypatch) -> list[object]:  # type: ignore[no-untyped-def]
    connects: list[object] = []
    connect = socket.socket.connect

    def recorded(sock: socket.socket, address: object) -> None:
        connects.append(address)
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recorded)
    return connects


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.jpg",
        "gopher://127.0.0.1:6379/_INFO",
        "http://user:pw@example.com/",
        "http:///nohost",
        "http://[::1/",
        "javascript:alert(1)",
        "//example.com/a.jpg",
    ],
)
def test_illegal_urls(url):
    assert _fetch_code(url, allow="") == "InvalidParameterValue.UrlIllegal"


def test_redirects_are_checked_again(hostile):
    # The first hop is allowed; where it redirects to is not.
    assert _fetch_code(hostile + "/to-other-loopback") == "FailedOperation.ImageDownloadError"
    assert _fetch_code(hostile + "/to-metadata") == "FailedOperation.ImageDownloadError"
    assert _fetch_code(hostile + "/to-file") == "InvalidParameterValue.UrlIllegal"


def test_size_caps(hostile):
    assert _fetch_code(hostile + "/huge-declared") == "FailedOperation.ImageSizeExceed"
    assert _fetch_code(hostile + "/huge-chunked", timeout_s=5) == "FailedOperation.ImageSizeExceed"


@pytest.mark.parametrize("path", ["/drip-headers", "/drip-body"])
def test_dripping_server_cannot_outlast_the_deadline(hostile, path):
    started = time.monotonic()
    assert _fetch_code(hostile + path, timeout_s=1.0) == "FailedOperation.ImageDownloadError"
    assert time.monotonic() - started < 2.0


def test_http_errors(hostile):
    assert _fetch_code(hostile + "/missing") == "FailedOperation.ImageDownloadError"
    assert _fetch_code("http://127.0.0.1:1/x.jpg") == "FailedOperation.ImageDownloadError"  # nothing listens
