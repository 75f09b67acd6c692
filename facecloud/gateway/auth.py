"""Verifying a TC3-signed request: who sent it, and was it signed by them, now, once."""

from __future__ import annotations

import time
from datetime import UTC, datetime

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
    if auth.service != SERVICE:
        raise ApiError("AuthFailure.SignatureFailure", f"The credential scope must name the service `{SERVICE}`.")
    if auth.date != datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d"):
        raise ApiError("AuthFailure.SignatureFailure", "The credential date does not match X-TC-Timestamp.")
    key = accounts.signing_key(auth.secret_id)
    canonical = tc3.canonical_request(
        method,
        "/",
        query if method == "GET" else "",
        headers,
        auth.signed_headers,
        tc3.payload_hash(b"" if method == "GET" else body, headers.get("x-tc-content-sha256")),
    )
    to_sign = tc3.string_to_sign(str(timestamp), auth.date, auth.service, canonical)
    if not tc3.signatures_match(tc3.signature(key.secret_key, auth.date, auth.service, to_sign), auth.signature):
        raise ApiError("AuthFailure.SignatureFailure")
    return key, auth.signature


def refuse_replay(replay_guard: ReplayGuard, action: str, signature: str, window_s: int, read_only: bool) -> None:
    first_action = replay_guard.claim(signature, action, window_s * 2)
    if first_action is None or read_only:
        return
    raise ApiError(
        "AuthFailure.SignatureFailure",
        "This signed request was already received (replay).",
        "该签名请求已被使用（重放）。",
    )


def _timestamp(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ApiError(
            "MissingParameter" if not raw else "InvalidParameter",
            "X-TC-Timestamp must be a unix time in seconds.",
        ) from None
