"""Fuzzing the image actions through the gateway: random bytes, truncated and corrupted real photos, headers
that claim huge dimensions, decompression bombs, unsupported formats and broken base64. Every answer is a
Tencent-style envelope with an image error code (or a success/NoFaceInPhoto for what still decodes), never
InternalError."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import need_data
from tests.hardening.support import FUZZ_CASES, assert_tencent_answer, signed_post

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IMAGE_CODES = {
    "FailedOperation.ImageDecodeFailed",
    "FailedOperation.ImageSizeExceed",
    "FailedOperation.ImageResolutionExceed",
    "FailedOperation.ImageResolutionTooSmall",
    "InvalidParameterValue.ImageEmpty",
    "InvalidParameterValue.NoFaceInPhoto",
    "FailedOperation.FaceSizeTooSmall",
    "FailedOperation.FaceQualityNotQualified",
    "FailedOperation.ImageFacedetectFailed",
}


@pytest.fixture(scope="module")
def photo() -> bytes:
    lfw = need_data("lfw-dev", "lfw-deepfunneled")
    return next(iter(sorted(lfw.glob("*/*.jpg")))).read_bytes()


@pytest.fixture(scope="module")
def image_caller(server):  # type: ignore[no-untyped-def]
    """Posts DetectFace; a fresh account every 30 calls keeps this fast fuzzing under the 50 QPS limit."""
    state = {"creds": server.new_account("fuzz-img"), "calls": 0}

    def post(params_json: bytes, action_name: str = "DetectFace") -> dict:
        state["calls"] += 1
        if state["calls"] % 30 == 0:
            state["creds"] = server.new_account("fuzz-img")
        response = assert_tencent_answer(signed_post(server.url, state["creds"], action_name, params_json, timeout=120))
        if "Error" in response:
            assert response["Error"]["Code"] != "RequestLimitExceeded"
        return response

    return post


def _image_params(data: bytes) -> bytes:
    return b'{"Image": "' + base64.b64encode(data) + b'"}'


def _assert_image_answer(response: dict) -> None:
    if "Error" in response:
        assert response["Error"]["Code"] in IMAGE_CODES, response


@FUZZ
@given(data=st.binary(max_size=2048))
def test_fuzz_random_bytes(image_caller, data):
    FUZZ_CASES["images: random bytes"] += 1
    _assert_image_answer(image_caller(_image_params(data)))


@settings(FUZZ, max_examples=60)  # what still decodes runs the detector: the slow cases
@given(cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=12))
def test_fuzz_truncated_and_corrupted_photos(image_caller, photo, cut, flips):
    FUZZ_CASES["images: truncated/corrupted"] += 1
    data = bytearray(photo[: max(1, int(len(photo) * cut))] if cut < 0.98 else photo)
    for where, value in flips:
        data[min(len(data) - 1, int(len(data) * where))] = value
    _assert_image_answer(image_caller(_image_params(bytes(data))))


@FUZZ
@given(text=st.text(max_size=200))
def test_fuzz_broken_base64(image_caller, text):
    FUZZ_CASES["images: broken base64"] += 1
    import json

    _assert_image_answer(image_caller(json.dumps({"Image": text}).encode()))


def _png_header(width: int, height: int, idat: bytes = b"") -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _jpeg_claiming(photo: bytes, width: int, height: int) -> bytes:
    at = photo.index(b"\xff\xc0") + 5  # SOF0: precision, then height and width
    return photo[:at] + struct.pack(">HH", height, width) + photo[at + 4 :]


def _encoded(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, fmt)
    return out.getvalue()


def _bomb() -> bytes:
    """12000 x 12000 black PNG: 432 MB of pixels in about 0.4 MB."""
    rows = (b"\x00" + b"\x00" * 36000) * 500
    compressor = zlib.compressobj(6)
    idat = b"".join(compressor.compress(rows) for _ in range(24)) + compressor.flush()
    return _png_header(12000, 12000, idat)


@pytest.mark.parametrize(
    "name",
    [
        "png claims 100000x100000",
        "png claims 0x0",
        "jpeg claims 65000x65000",
        "jpeg claims 4001x300",
        "decompression bomb",
        "gif",
        "tiff",
        "webp",
        "1x1 png",
        "16-bit png",
        "palette png",
        "cmyk jpeg",
        "empty",
        "whitespace base64",
    ],
)
def test_hostile_images(image_caller, photo, name):
    FUZZ_CASES["images: hostile cases"] += 1
    data = {
        "png claims 100000x100000": lambda: _png_header(100000, 100000),
        "png claims 0x0": lambda: _png_header(0, 0),
        "jpeg claims 65000x65000": lambda: _jpeg_claiming(photo, 65000, 65000),
        "jpeg claims 4001x300": lambda: _jpeg_claiming(photo, 4001, 300),
        "decompression bomb": _bomb,
        "gif": lambda: _encoded("GIF", (100, 100), "P"),
        "tiff": lambda: _encoded("TIFF", (100, 100)),
        "webp": lambda: _encoded("WEBP", (100, 100)),
        "1x1 png": lambda: _encoded("PNG", (1, 1)),
        "16-bit png": lambda: _encoded("PNG", (200, 200), "I;16"),
        "palette png": lambda: _encoded("PNG", (200, 200), "P"),
        "cmyk jpeg": lambda: _encoded("JPEG", (200, 200), "CMYK"),
        "empty": lambda: b"",
        "whitespace base64": lambda: None,
    }[name]()
    params = b'{"Image": " \\n\\t "}' if data is None else _image_params(data)
    response = image_caller(params)
    _assert_image_answer(response)
    expected = {
        "png claims 100000x100000": "FailedOperation.ImageResolutionExceed",
        "jpeg claims 65000x65000": "FailedOperation.ImageResolutionExceed",
        "jpeg claims 4001x300": "FailedOperation.ImageResolutionExceed",
        "decompression bomb": "FailedOperation.ImageResolutionExceed",
        "gif": "FailedOperation.ImageDecodeFailed",
        "tiff": "FailedOperation.ImageDecodeFailed",
        "webp": "FailedOperation.ImageDecodeFailed",
        "1x1 png": "FailedOperation.ImageResolutionTooSmall",
    }.get(name)
    if expected:
        assert response["Error"]["Code"] == expected


def test_private_url_through_the_gateway(image_caller):
    FUZZ_CASES["images: hostile cases"] += 1
    for url in ("http://127.0.0.1:9/a.jpg", "http://169.254.169.254/latest/meta-data/", "http://[::1]/a.jpg"):
        response = image_caller(f'{{"Url": "{url}"}}'.encode())
        assert response["Error"]["Code"] == "FailedOperation.ImageDownloadError"
