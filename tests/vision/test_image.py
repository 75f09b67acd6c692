"""Image decoding: every image error code of the API, EXIF orientation, Url fetching rules."""

from __future__ import annotations

import base64
import http.server
import io
import struct
import threading
import time
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageOps

from facecloud.errors import ApiError
from facecloud.vision import image as images
from tests.conftest import need_data


def encoded(pil: Image.Image, fmt: str, **save: object) -> str:
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt, **save)
    return base64.b64encode(buffer.getvalue()).decode()


def error_code(**kwargs: object) -> str:
    with pytest.raises(ApiError) as caught:
        images.decode(kwargs.pop("image", None), kwargs.pop("url", None), **kwargs)
    return caught.value.code


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with one tiny IDAT: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_empty_inputs() -> None:
    assert error_code() == "InvalidParameterValue.ImageEmpty"
    assert error_code(image="") == "InvalidParameterValue.ImageEmpty"
    with pytest.raises(ApiError) as caught:
        images.decode_bytes(b"")
    assert caught.value.code == "InvalidParameterValue.ImageEmpty"


def test_oversize_base64() -> None:
    assert error_code(image="A" * (5 * 1024 * 1024 + 4)) == "FailedOperation.ImageSizeExceed"


def test_gif_corrupt_truncated_and_bad_base64_fail_to_decode() -> None:
    picture = Image.new("RGB", (128, 128), (200, 100, 50))
    assert error_code(image=encoded(picture, "GIF")) == "FailedOperation.ImageDecodeFailed"
    assert error_code(image=base64.b64encode(b"not an image at all" * 10).decode()) == (
        "FailedOperation.ImageDecodeFailed"
    )
    assert error_code(image="!!! not base64 !!!") == "FailedOperation.ImageDecodeFailed"
    noise = Image.effect_noise((256, 256), 60).convert("RGB")
    full = base64.b64decode(encoded(noise, "JPEG", quality=90))
    truncated = base64.b64encode(full[: len(full) // 2]).decode()
    assert error_code(image=truncated) == "FailedOperation.ImageDecodeFailed"


def test_resolution_limits() -> None:
    assert error_code(image=encoded(Image.new("RGB", (63, 200)), "PNG")) == "FailedOperation.ImageResolutionTooSmall"
    assert error_code(image=encoded(Image.new("RGB", (2001, 100)), "PNG")) == "FailedOperation.ImageResolutionExceed"
    assert error_code(image=encoded(Image.new("RGB", (4001, 64)), "JPEG")) == "FailedOperation.ImageResolutionExceed"
    wide_jpeg = images.decode(encoded(Image.new("RGB", (3000, 64)), "JPEG"), None)
    assert (wide_jpeg.width, wide_jpeg.height, wide_jpeg.format) == (3000, 64, "JPG")
    bmp = images.decode(encoded(Image.new("RGB", (100, 80)), "BMP"), None)
    assert (bmp.width, bmp.height, bmp.format) == (100, 80, "BMP")


def test_decompression_bomb_is_refused_from_its_header() -> None:
    for width, height in ((30000, 30000), (1_000_000, 1_000_000), (2500, 1000)):
        started = time.perf_counter()
        data = base64.b64encode(png_header_only(width, height)).decode()
        assert error_code(image=data) == "FailedOperation.ImageResolutionExceed"
        assert time.perf_counter() - started < 1.0


def test_exif_orientation_is_applied() -> None:
    picture = Image.new("RGB", (200, 100), (0, 0, 0))
    picture.paste((255, 255, 255), (0, 0, 100, 100))  # white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    decoded = images.decode(encoded(picture, "JPEG", exif=exif.tobytes()), None)
    assert (decoded.width, decoded.height) == (100, 200)
    assert decoded.bgr[20, 50].mean() > 200 and decoded.bgr[180, 50].mean() < 50  # white is now on top
    assert decoded.bgr.dtype.name == "uint8" and decoded.bgr.shape == (200, 100, 3)


def test_jpeg_pixels_are_pillows_in_every_orientation_and_mode() -> None:
    """JPEGs decode through OpenCV (one pass); the pixels must be exactly those of Pillow's decode, EXIF transpose
    and channel swap, for every orientation, colour and grey, baseline and progressive, and CMYK (left to Pillow)."""
    photo = Image.open(need_data("detection-counts/images/007_B.jpg")).convert("RGB").resize((300, 200))
    cases = [(photo, orientation, False) for orientation in range(1, 9)]
    cases += [(photo.convert("L"), orientation, False) for orientation in (1, 6)]
    cases += [(photo, 8, True), (photo.convert("CMYK"), 1, False)]
    for picture, orientation, progressive in cases:
        exif = Image.Exif()
        exif[0x0112] = orientation
        data = encoded(picture, "JPEG", quality=90, exif=exif.tobytes(), progressive=progressive)
        pillow = ImageOps.exif_transpose(Image.open(io.BytesIO(base64.b64decode(data)))).convert("RGB")
        expected = np.asarray(pillow)[:, :, ::-1]
        np.testing.assert_array_equal(images.decode(data, None).bgr, expected, err_msg=f"{picture.mode} {orientation}")


# --- Url inputs
# -------------------------------------------------------------------------------------------------

JPEG_BYTES = base64.b64decode(encoded(Image.new("RGB", (120, 90), (10, 200, 30)), "JPEG"))


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/face.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(JPEG_BYTES)))
            self.end_headers()
            self.wfile.write(JPEG_BYTES)
        elif self.path.startswith("/hop/"):
            left = int(self.path.rsplit("/", 1)[1])
            self.send_response(302)
            self.send_header("Location", "/face.jpg" if left == 0 else f"/hop/{left - 1}")
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_refuses_loopback_and_bad_urls(web: str) -> None:
    # Non-public addresses are answered like unreachable hosts (a probe learns nothing about the inside network).
    assert error_code(url=f"{web}/face.jpg") == "FailedOperation.ImageDownloadError"
    assert error_code(url="http://localhost/face.jpg") == "FailedOperation.ImageDownloadError"
    assert error_code(url="http://169.254.169.254/latest") == "FailedOperation.ImageDownloadError"
    assert error_code(url="ftp://example.com/a.jpg") == "InvalidParameterValue.UrlIllegal"
    assert error_code(url="not a url") == "InvalidParameterValue.UrlIllegal"


def test_url_fetch_when_allowed(web: str) -> None:
    allow = {"allow_cidrs": "127.0.0.0/8", "timeout_s": 3.0}
    decoded = images.decode(None, f"{web}/face.jpg", **allow)
    assert (decoded.width, decoded.height) == (120, 90)
    assert images.decode(None, f"{web}/hop/2", **allow).width == 120  # 3 redirects are allowed
    assert error_code(url=f"{web}/hop/3", **allow) == "FailedOperation.ImageDownloadError"
    assert error_code(url=f"{web}/missing.jpg", **allow) == "FailedOperation.ImageDownloadError"
    # Url wins over Image when both are given.
    assert images.decode("garbage", f"{web}/face.jpg", **allow).width == 120
