"""Verifying a TC3-signed request: who sent it, and was it signed by them, now.

What is checked is what the client signed, not what a public cloud endpoint would imply: Tencent's SDKs differ in
how they sign a custom endpoint `HOST:PORT` (the Python SDK signs the Host with its port and the scope's service
`iai`; the Node SDK signs the Host without its port and takes the service from the endpoint's first label). Both are
accepted; the signature itself is never weakened (the key, the body, the timestamp and every signed header count).
Replays: see facecloud/accounts/replay.py and docs/security.md."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import parse_qs

from facecloud.accounts import Accounts, SigningKey
from facecloud.accounts.replay import ReplayGuard
from facecloud.errors import ApiError
from facecloud.gateway import tc3

SERVICE = "iai"


def verify(
    *,
    method: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    accounts: Accounts,
    window_s: int,
) -> tuple[SigningKey, str]:
    """The signing key of a correctly signed, fresh request, and its signature (for the replay check)."""
    header = headers.get("authorization")
    if not header:
        refuse_tc1(query, body, headers)
        raise ApiError(
            "AuthFailure.InvalidAuthorization",
            "The Authorization header is missing.",
            "缺少 Authorization 头部。",
        )
    auth = tc3.parse_authorization(header)
    if headers.get("x-tc-token"):
        raise ApiError(
            "AuthFailure.TokenFailure",
            "Temporary credentials (X-TC-Token) are not supported.",
            "不支持临时密钥（X-TC-Token）。",
        )
    timestamp = _timestamp(headers.get("x-tc-timestamp", ""))
    if abs(time.time() - timestamp) > window_s:
        raise ApiError("AuthFailure.SignatureExpire")
    host = headers.get("host", "")
    if auth.service not in accepted_services(host):
        raise ApiError(
            "AuthFailure.SignatureFailure",
            f"The credential scope names the service `{auth.service}`: use `{SERVICE}`.",
            f"签名范围（credential scope）中的服务 `{auth.service}` 不正确，应为 `{SERVICE}`。",
        )
    if auth.date != datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d"):
        raise ApiError(
            "AuthFailure.SignatureFailure",
            "The credential date does not match X-TC-Timestamp.",
            "签名范围中的日期与 X-TC-Timestamp 不一致。",
        )
    key = accounts.signing_key(auth.secret_id)
    payload = tc3.payload_hash(b"" if method == "GET" else body, headers.get("x-tc-content-sha256"))
    for signed_host in signed_host_candidates(host):
        canonical = tc3.canonical_request(
            method,
            "/",
            query if method == "GET" else "",
            {**headers, "host": signed_host},
            auth.signed_headers,
            payload,
        )
        to_sign = tc3.string_to_sign(str(timestamp), auth.date, auth.service, canonical)
        if tc3.signatures_match(tc3.signature(key.secret_key, auth.date, auth.service, to_sign), auth.signature):
            return key, auth.signature
    raise ApiError("AuthFailure.SignatureFailure")


def accepted_services(host: str) -> frozenset[str]:
    """`iai`, and the first label of the Host as sent: what the Node SDK signs for an endpoint like 127.0.0.1:8080."""
    return frozenset({SERVICE, host.split(".")[0]})


def signed_host_candidates(host: str) -> tuple[str, ...]:
    """The Host as sent (Python SDK, tccli) and, when it carries a port, without it (Node SDK)."""
    name, separator, port = host.rpartition(":")
    if separator and port.isdigit() and name and not name.endswith(":"):
        return (host, name)
    return (host,)


def refuse_tc1(query: str, body: bytes, headers: dict[str, str]) -> None:
    """A request signed the TC1 way (HmacSHA1/HmacSHA256 parameters instead of an Authorization header)."""
    params = parse_qs(query)
    if "x-www-form-urlencoded" in headers.get("content-type", ""):
        params.update(parse_qs(body.decode("utf-8", "replace")))
    if "Signature" not in params and "SignatureMethod" not in params:
        return
    method = (params.get("SignatureMethod") or ["HmacSHA1"])[0]
    raise ApiError(
        "AuthFailure.SignatureFailure",
        f"The signature method {method} (TC1) is not supported: sign with TC3-HMAC-SHA256, "
        "the default of Tencent's SDKs (ClientProfile signMethod).",
        f"不支持签名方法 {method}（TC1）：请使用 TC3-HMAC-SHA256 签名（腾讯云 SDK 的默认签名方法 signMethod）。",
    )


def refuse_replay(replay_guard: ReplayGuard, action: str, signature: str, window_s: int, read_only: bool) -> None:
    """Strict replay mode only: a signature already seen never serves a write or a billable call again."""
    first_action = replay_guard.claim(signature, action, window_s * 2)
    if first_action is None or read_only:
        return
    raise ApiError(
        "AuthFailure.SignatureFailure",
        "This signed request was already received (replay; the server runs in strict replay mode).",
        "该签名请求已被使用（重放；服务端处于严格防重放模式）。",
    )


def _timestamp(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ApiError(
            "MissingParameter" if not raw else "InvalidParameter",
            "X-TC-Timestamp must be a unix time in seconds.",
            "X-TC-Timestamp 必须是以秒为单位的 Unix 时间戳。",
        ) from None
