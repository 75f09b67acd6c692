"""What each official client signs for an endpoint HOST:PORT, and that nothing else passes.

The Node.js SDK signs the Host without its port and names the endpoint's first label ("127") as the scope's
service; the Python SDK and tccli sign the Host with its port and the service `iai`. The HmacSHA256 (TC1) style of
the SDKs' `signMethod` option is refused with a message that says so."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime

import httpx
import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from facecloud.gateway import tc3


def node_style_post(server, creds, body: bytes, *, host: str, service: str, key: str | None = None, timestamp=None):  # type: ignore[no-untyped-def]
    """A request signed exactly as tencentcloud-sdk-nodejs signs it (sign.js: sign3)."""
    timestamp = timestamp or int(time.time())
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    canonical = (
        f"POST\n/\n\ncontent-type:application/json\nhost:{host}\n\ncontent-type;host\n"
        f"{hashlib.sha256(body).hexdigest()}"
    )
    to_sign = tc3.string_to_sign(str(timestamp), date, service, canonical)
    signature = tc3.signature(key or creds.secret_key, date, service, to_sign)
    headers = {
        "Content-Type": "application/json",
        "Host": server.endpoint,
        "X-TC-Action": "GetGroupList",
        "X-TC-Version": "2020-03-03",
        "X-TC-Timestamp": str(timestamp),
        "Authorization": f"TC3-HMAC-SHA256 Credential={creds.secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}",
    }
    return httpx.post(server.url + "/", content=body, headers=headers).json()["Response"]


def test_node_style_signature_is_accepted(server, account):
    answer = node_style_post(server, account, b"{}", host="127.0.0.1", service="127")
    assert answer["GroupNum"] == 0


@pytest.mark.parametrize(
    ("host", "service", "key", "age_s"),
    [
        ("127.0.0.1", "127", "y" * 32, 0),  # wrong key
        ("127.0.0.1", "cvm", None, 0),  # a service that is neither iai nor the endpoint's label
        ("10.0.0.1", "127", None, 0),  # another host signed
        ("127.0.0.1", "127", None, 900),  # expired
    ],
)
def test_node_style_signature_still_checks_everything(server, account, host, service, key, age_s):
    answer = node_style_post(
        server, account, b"{}", host=host, service=service, key=key, timestamp=int(time.time()) - age_s
    )
    assert answer["Error"]["Code"] in {"AuthFailure.SignatureFailure", "AuthFailure.SignatureExpire"}


def test_tampered_body_is_refused(server, account):
    body = json.dumps({"Limit": 1}).encode()
    headers = tc3.sign_headers(
        secret_id=account.secret_id,
        secret_key=account.secret_key,
        action="GetGroupList",
        body=body,
        host=server.endpoint,
        timestamp=int(time.time()),
    )
    tampered = httpx.post(server.url + "/", content=body.replace(b"1", b"2"), headers=headers).json()["Response"]
    assert tampered["Error"]["Code"] == "AuthFailure.SignatureFailure"


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_tc1_signature_method_is_named_as_unsupported(server, account, method):
    from tencentcloud.common import credential
    from tencentcloud.iai.v20200303 import iai_client

    profile = ClientProfile(
        signMethod="HmacSHA256", httpProfile=HttpProfile(endpoint=server.endpoint, protocol="http", reqMethod=method)
    )
    client = iai_client.IaiClient(credential.Credential(account.secret_id, account.secret_key), "ap-guangzhou", profile)
    with pytest.raises(TencentCloudSDKException) as err:
        client.call_json("GetGroupList", {})
    assert err.value.code == "AuthFailure.SignatureFailure"
    assert "HmacSHA256" in err.value.message and "TC3-HMAC-SHA256" in err.value.message
