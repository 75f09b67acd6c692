"""Speaking the TC3 protocol without the SDK (so tests can forge, replay and corrupt requests), and counting
the generated cases of the fuzz suite."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx

from facecloud.accounts import Credentials
from facecloud.gateway import tc3

# Cases run per fuzz property, printed in the terminal summary (tests/hardening/conftest.py).
FUZZ_CASES: Counter[str] = Counter()


def signed_post(
    url: str,
    creds: Credentials,
    action: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    client: httpx.Client | None = None,
    timeout: float = 30.0,
    sign_action: bool = False,
    **extra_headers: str,
) -> httpx.Response:
    host = url.removeprefix("http://").rstrip("/")
    headers = tc3.sign_headers(
        secret_id=creds.secret_id,
        secret_key=creds.secret_key,
        action=action,
        body=body,
        host=host,
        timestamp=timestamp or int(time.time()),
        sign_action=sign_action,
    )
    headers.update(extra_headers)
    sender = client or httpx
    return sender.post(url.rstrip("/") + "/", content=body, headers=headers, timeout=timeout)


def call(url: str, creds: Credentials, action: str, params: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """The `Response` object of a signed JSON call."""
    body = json.dumps(params).encode()
    return signed_post(url, creds, action, body, **kwargs).json()["Response"]


def signed_get(url: str, creds: Credentials, action: str, query: str, timestamp: int | None = None) -> httpx.Response:
    """A GET form request (`?Action=...&Field.0=...`), signed over the canonical query like the SDK does."""
    host = url.removeprefix("http://").rstrip("/")
    timestamp = timestamp or int(time.time())
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    headers = {"content-type": "application/x-www-form-urlencoded", "host": host}
    canonical = tc3.canonical_request(
        "GET", "/", query, headers, ("content-type", "host"), hashlib.sha256(b"").hexdigest()
    )
    sig = tc3.signature(creds.secret_key, date, "iai", tc3.string_to_sign(str(timestamp), date, "iai", canonical))
    headers.update(
        {
            "X-TC-Action": action,
            "X-TC-Version": "2020-03-03",
            "X-TC-Timestamp": str(timestamp),
            "Authorization": f"TC3-HMAC-SHA256 Credential={creds.secret_id}/{date}/iai/tc3_request, "
            f"SignedHeaders=content-type;host, Signature={sig}",
        }
    )
    return httpx.get(f"{url.rstrip('/')}/?{query}", headers=headers, timeout=30)


def assert_tencent_answer(reply: httpx.Response) -> dict[str, Any]:
    """HTTP 200, exactly application/json, a Response with a RequestId, and either success or an error code
    that is not InternalError (an InternalError means an unhandled exception)."""
    assert reply.status_code == 200, reply.text[:300]
    assert reply.headers["content-type"] == "application/json"
    response = reply.json()["Response"]
    assert isinstance(response.get("RequestId"), str) and len(response["RequestId"]) == 36
    if "Error" in response:
        code = response["Error"]["Code"]
        assert isinstance(code, str) and code and code != "InternalError", response
        assert isinstance(response["Error"]["Message"], str)
    return response
