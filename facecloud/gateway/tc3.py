"""TC3-HMAC-SHA256, the request signature of TencentCloud API 3.0."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from facecloud.errors import ApiError

ALGORITHM = "TC3-HMAC-SHA256"
# The service label is whatever the client put in its scope (the Node SDK takes the endpoint's first label, "127" for
# 127.0.0.1:8080): auth.verify decides which labels it accepts.
_AUTH_RE = re.compile(
    r"^TC3-HMAC-SHA256\s+Credential=(?P<secret_id>[^/\s]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/\s]+)"
    r"/tc3_request,\s*SignedHeaders=(?P<headers>[a-z0-9;\-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Authorization:
    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(header: str) -> Authorization:
    match = _AUTH_RE.match(header.strip())
    if match is None:
        raise ApiError("AuthFailure.InvalidAuthorization")
    headers = tuple(match["headers"].split(";"))
    if "content-type" not in headers or "host" not in headers:
        raise ApiError(
            "AuthFailure.InvalidAuthorization",
            "SignedHeaders must include content-type and host.",
            "SignedHeaders 必须包含 content-type 和 host。",
        )
    return Authorization(match["secret_id"], match["date"], match["service"], headers, match["signature"])


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    signed_headers: tuple[str, ...],
    payload_hash: str,
) -> str:
    # Tencent lowercases names and values (its published example signs `x-tc-action:describeinstances`).
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed_headers)
    return "\n".join([method, path, query, canonical_headers, ";".join(signed_headers), payload_hash])


def string_to_sign(timestamp: str, date: str, service: str, canonical: str) -> str:
    scope = f"{date}/{service}/tc3_request"
    return "\n".join([ALGORITHM, timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def signature(secret_key: str, date: str, service: str, to_sign: str) -> str:
    k_date = _hmac(("TC3" + secret_key).encode(), date)
    k_service = _hmac(k_date, service)
    k_signing = _hmac(k_service, "tc3_request")
    return hmac.new(k_signing, to_sign.encode(), hashlib.sha256).hexdigest()


def payload_hash(body: bytes, content_sha256_header: str | None) -> str:
    if content_sha256_header == "UNSIGNED-PAYLOAD":
        return hashlib.sha256(b"UNSIGNED-PAYLOAD").hexdigest()
    return hashlib.sha256(body).hexdigest()


def signatures_match(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def sign_headers(
    *,
    secret_id: str,
    secret_key: str,
    action: str,
    body: bytes,
    host: str,
    timestamp: int,
    version: str = "2020-03-03",
    service: str = "iai",
    language: str | None = None,
    sign_action: bool = False,
) -> dict[str, str]:
    """Client side: the headers of a signed JSON POST (for tools and tests that speak the protocol without the SDK).
    `sign_action` also signs X-TC-Action, which binds the signature to the action (the SDKs sign only
    content-type and host)."""
    from datetime import UTC, datetime

    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    headers = {"content-type": "application/json", "host": host, "x-tc-action": action}
    signed_names = ("content-type", "host", "x-tc-action") if sign_action else ("content-type", "host")
    canonical = canonical_request("POST", "/", "", headers, signed_names, payload_hash(body, None))
    sig = signature(secret_key, date, service, string_to_sign(str(timestamp), date, service, canonical))
    signed = {
        "Content-Type": "application/json",
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(timestamp),
        "Authorization": f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders={';'.join(signed_names)}, Signature={sig}",
    }
    if language:
        signed["X-TC-Language"] = language
    return signed
