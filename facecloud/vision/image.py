"""Image inputs: base64 or Url -> a BGR pixel array, with every limit Tencent's API documents.

Limits (checked in this order): base64 <= 5 MB encoded; PNG/JPG/JPEG/BMP only; long side <= 4000 px
for JPG and <= 2000 px for the other formats; short side >= 64 px. The dimensions are read from the header
before any pixel is decoded: a small file claiming huge dimensions (a decompression bomb) is refused fast."""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import ipaddress
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps

from facecloud.errors import ApiError

MAX_BASE64_BYTES = 5 * 1024 * 1024
# A Url image may not exceed what its base64 form could carry.
MAX_DOWNLOAD_BYTES = MAX_BASE64_BYTES * 3 // 4
MAX_REDIRECTS = 3
MIN_SHORT_SIDE = 64
MAX_LONG_SIDE = {"JPG": 4000}
MAX_LONG_SIDE_OTHER = 2000
# Pillow's format names -> Tencent's; MPO is the multi-picture JPEG many phone cameras write.
FORMATS = {"JPEG": "JPG", "MPO": "JPG", "PNG": "PNG", "BMP": "BMP"}
REDUCED_DECODE = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
TURNED_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # HxWx3 uint8 BGR, EXIF orientation applied; the photo's own size unless `size` is set
    format: str  # "JPG" | "PNG" | "BMP"
    need_rotate: bool = False  # NeedRotateDetection: the detector may try 90/180/270 degree rotations
    # The photo's (width, height) when `pixels` is a smaller decode for detection only (decode_bytes).
    size: tuple[int, int] | None = None

    @property
    def bgr(self) -> np.ndarray:
        """The photo's pixels at its own size."""
        if self.size is not None:
            raise ValueError("this image was decoded smaller, for face detection only")
        return self.pixels

    @property
    def width(self) -> int:
        return self.size[0] if self.size else int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return self.size[1] if self.size else int(self.pixels.shape[0])

    @property
    def scales(self) -> np.ndarray:
        """`pixels`' size over the photo's, per axis (x, y): 1 unless decoded smaller."""
        return np.array([self.pixels.shape[1] / self.width, self.pixels.shape[0] / self.height])


def _decode_failed(detail: str) -> ApiError:
    return ApiError("FailedOperation.ImageDecodeFailed", f"Image decoding failed: {detail}.", "图片解码失败。")


def decode_base64(text: str) -> bytes:
    if len(text) > MAX_BASE64_BYTES:
        raise ApiError(
            "FailedOperation.ImageSizeExceed",
            "The base64-encoded image exceeds 5 MB.",
            "base64编码后的图片数据大小不超过5M。",
        )
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise _decode_failed("invalid base64") from error


def decode_bytes(
    data: bytes, need_rotate: bool = False, detection_scale: Callable[[int, int], float] | None = None
) -> DecodedImage:
    """Check format and dimensions from the header, then decode the pixels (EXIF orientation applied).

    detection_scale: the pixels are for face detection only, which needs at most this scale of a photo of that
    (width, height): a large JPEG is then decoded smaller (`reduction`)."""
    if not data:
        raise ApiError("InvalidParameterValue.ImageEmpty", "The image is empty.", "图片为空。")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            pil = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise _resolution_exceed() from error
    except Exception as error:  # Pillow raises many types for unreadable data
        raise _decode_failed("unrecognised or corrupt data") from error
    fmt = FORMATS.get(pil.format or "")
    if fmt is None:
        raise _decode_failed(f"format {pil.format or 'unknown'} is not supported (PNG, JPG, JPEG, BMP)")
    _check_dimensions(pil.size, fmt)
    if fmt == "JPG" and pil.mode in ("RGB", "L"):
        factor = reduction(detection_scale(*pil.size)) if detection_scale else 1
        size = None
        if factor > 1:  # the pixels come out smaller: keep the photo's own (displayed) size beside them
            width, height = pil.size
            turned = pil.getexif().get(ExifTags.Base.Orientation, 1) in TURNED_ORIENTATIONS
            size = (height, width) if turned else (width, height)
        return DecodedImage(_decode_jpeg(data, factor), fmt, need_rotate, size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            pil.load()
            ImageOps.exif_transpose(pil, in_place=True)
            rgb = _to_rgb(pil)
    except Image.DecompressionBombError as error:
        raise _resolution_exceed() from error
    except Exception as error:
        raise _decode_failed("corrupt or truncated data") from error
    bgr = cv2.cvtColor(np.asarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR)  # 10x numpy's [:, :, ::-1] copy
    return DecodedImage(bgr, fmt, need_rotate)


def reduction(scale: float) -> int:
    """The largest of JPEG's decode reductions (1, 2, 4, 8) that keeps at least twice the detector's `scale`: the
    detector's own resize then still averages 2x and more (a last step near 1x blurs, detector.downscale; at 1/4
    the worst box of 6 large-photo cases overlapped the whole decode's by IoU 0.914, at 1/2 by 0.993)."""
    factor = 1
    while factor < 8 and 2 * factor * 2 * scale <= 1:
        factor *= 2
    return factor


def _decode_jpeg(data: bytes, factor: int = 1) -> np.ndarray:
    """OpenCV's libjpeg-turbo straight into BGR with the EXIF orientation applied: the same pixels as Pillow's
    decode, transpose and channel swap (every orientation, colour and grey, progressive; tests/vision/test_image.py)
    in one pass instead of three. CMYK JPEGs stay with Pillow: OpenCV converts them differently (by 1 level).

    factor 2, 4 or 8: libjpeg's scaled decode (the DCT blocks read at 1/2, 1/4, 1/8), the size rounded up; a
    12-MP photo at 1/2 takes 33-35 ms against 49-52 (the entropy decoding is the same work at any scale)."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), REDUCED_DECODE[factor])
    if bgr is None:
        raise _decode_failed("corrupt or truncated data")
    return bgr


def _to_rgb(pil: Image.Image) -> Image.Image:
    if pil.mode in ("I;16", "I;16B", "I;16L", "I"):
        pil = pil.point(lambda v: v / 256).convert("L")
    if pil.mode in ("RGBA", "LA", "PA") or (pil.mode == "P" and "transparency" in pil.info):
        rgba = pil.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return pil if pil.mode == "RGB" else pil.convert("RGB")


def _resolution_exceed() -> ApiError:
    return ApiError(
        "FailedOperation.ImageResolutionExceed",
        "Image resolution too large: long side at most 4000 px (JPG) or 2000 px (other formats).",
        "图片尺寸过大，JPG 格式长边不超过4000px，其他格式长边不超过2000px。",
    )


def _check_dimensions(size: tuple[int, int], fmt: str) -> None:
    long_side, short_side = max(size), min(size)
    if long_side > MAX_LONG_SIDE.get(fmt, MAX_LONG_SIDE_OTHER):
        raise _resolution_exceed()
    if short_side < MIN_SHORT_SIDE:
        raise ApiError(
            "FailedOperation.ImageResolutionTooSmall",
            "Image resolution too small: the short side must be at least 64 px.",
            "图片分辨率过小，短边至少64px。",
        )


def decode(
    image: str | None,
    url: str | None,
    *,
    timeout_s: float = 5.0,
    allow_cidrs: str = "",
    need_rotate: bool = False,
    detection_scale: Callable[[int, int], float] | None = None,
) -> DecodedImage:
    """Tencent's rule: when both are given, Url wins; neither -> ImageEmpty. detection_scale: see decode_bytes."""
    if url:
        data = fetch_url(url, timeout_s=timeout_s, allow_cidrs=allow_cidrs)
    elif image:
        data = decode_base64(image)
    else:
        raise ApiError("InvalidParameterValue.ImageEmpty", "The image is empty.", "图片为空。")
    return decode_bytes(data, need_rotate=need_rotate, detection_scale=detection_scale)


# --- Url inputs ---


def _url_illegal(detail: str) -> ApiError:
    return ApiError("InvalidParameterValue.UrlIllegal", f"Illegal Url: {detail}.", "URL格式不合法。")


def _download_error(detail: str) -> ApiError:
    return ApiError("FailedOperation.ImageDownloadError", f"Image download failed: {detail}.", "图片下载错误。")


def parse_cidrs(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable unicast only: `is_global` also refuses shared (100.64/10), benchmark and
    documentation ranges that `is_private` lets through; an IPv6 form that embeds an IPv4 address is
    judged by that address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped or address.sixtofour:
            address = address.ipv4_mapped or address.sixtofour  # type: ignore[assignment]
        elif address in _NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        elif address.teredo:
            return False
    return address.is_global and not address.is_multicast


def resolve_allowed(host: str, port: int, allow_cidrs: str) -> str:
    """Resolve the host and check EVERY address it has; return the one address to connect to (pinned, so the
    connection cannot be re-resolved to a private address after the check)."""
    allowed = parse_cidrs(allow_cidrs)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise _download_error(f"cannot resolve host {host}") from error
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not _is_public(address) and not any(address in net for net in allowed):
            # Answered like an unreachable host, so a probe learns nothing about the inside network.
            raise _download_error(f"host {host} resolves to an address that is not allowed")
        addresses.append(address)
    if not addresses:
        raise _download_error(f"host {host} has no address")
    return str(addresses[0])


def _check_url(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise _url_illegal("malformed") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _url_illegal("only http and https Urls with a host are accepted")
    if parts.username or parts.password:
        raise _url_illegal("credentials in the Url are not accepted")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def fetch_url(url: str, *, timeout_s: float, allow_cidrs: str = "") -> bytes:
    import httpx

    deadline = time.monotonic() + timeout_s
    current = url
    with httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            scheme, host, port = _check_url(current)
            address = resolve_allowed(host, port, allow_cidrs)
            response_or_next = _get_once(client, current, scheme, host, port, address, deadline)
            if isinstance(response_or_next, bytes):
                return response_or_next
            current = response_or_next
        raise _download_error(f"more than {MAX_REDIRECTS} redirects")


def _get_once(client, url: str, scheme: str, host: str, port: int, address: str, deadline: float) -> bytes | str:
    """One GET to the pinned address. Returns the body, or the next Url when redirected."""
    import httpx

    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    host_header = host if port in (80, 443) else f"{host}:{port}"
    headers = {"Host": host_header, "User-Agent": "facecloud-image-fetch/1", "Accept": "image/*"}
    watchdog = _Watchdog(deadline)
    extensions = {"sni_hostname": host, "trace": watchdog.trace}
    try:
        with client.stream("GET", pinned, headers=headers, extensions=extensions) as response:
            if response.is_redirect:
                location = response.headers.get("location", "")
                if not location:
                    raise _download_error("redirect without a Location")
                return urljoin(url, location)
            if response.status_code != 200:
                raise _download_error(f"HTTP status {response.status_code}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > MAX_DOWNLOAD_BYTES:
                raise _size_exceed()
            chunks, total = [], 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > MAX_DOWNLOAD_BYTES:
                    raise _size_exceed()
                if time.monotonic() > deadline:
                    raise _download_error("timed out")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as error:
        raise _download_error("timed out" if watchdog.fired else type(error).__name__) from error
    finally:
        watchdog.cancel()


class _Watchdog:
    """Shuts the connection down at the deadline. Per-read timeouts alone let a server that drips a byte at a
    time (in the headers or the body) hold a worker thread for as long as it likes."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._timer: threading.Timer | None = None

    def trace(self, event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete" and self._timer is None:
            sock = info["return_value"].get_extra_info("socket")
            self._timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), self._fire, [sock])
            self._timer.daemon = True
            self._timer.start()

    def _fire(self, sock: socket.socket) -> None:
        self.fired = True
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _size_exceed() -> ApiError:
    return ApiError(
        "FailedOperation.ImageSizeExceed",
        "The image at the Url exceeds the 5 MB (base64) limit.",
        "图片数据大小超过限制。",
    )
