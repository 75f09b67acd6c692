"""The gateway through Tencent's official SDK: signing, errors, envelopes, validation, both request forms."""

from __future__ import annotations

import time

import httpx
import pytest
from pydantic import Field
from tencentcloud.common import abstract_client
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from facecloud.gateway import tc3
from facecloud.gateway.registry import ActionContext, TencentRequest, action, registry
from tests.conftest import sdk_client


class EchoRequest(TencentRequest):
    Name: str = Field(max_length=8)
    Count: int = Field(1, ge=1, le=10)
    Tags: list[str] = []


def echo(req: EchoRequest, ctx: ActionContext) -> dict:
    return {"Name": req.Name, "Count": req.Count, "Tags": req.Tags, "AppId": ctx.app_id}


# A free action that exists only in this test module, so the gateway is tested apart from the domain parts.
if "GatewayTestEcho" not in registry():
    action("GatewayTestEcho", EchoRequest)(echo)
    action("GetGatewayTestEcho", EchoRequest)(echo)


def _code(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(TencentCloudSDKException) as err:
        call()
    return err.value.code


def test_signed_call_succeeds(client, account):
    answer = client.call_json("GatewayTestEcho", {"Name": "a", "Count": 3, "Tags": ["x", "y"]})
    response = answer["Response"]
    assert response["Name"] == "a" and response["Count"] == 3 and response["Tags"] == ["x", "y"]
    assert response["AppId"] == account.app_id
    assert len(response["RequestId"]) == 36


def test_wrong_key_is_signature_failure(server, account):
    forged = sdk_client(server.endpoint, account.secret_id, "x" * 32)
    assert _code(lambda: forged.call_json("GatewayTestEcho", {"Name": "a"})) == "AuthFailure.SignatureFailure"


def test_unknown_secret_id(server):
    stranger = sdk_client(server.endpoint, "AKID" + "0" * 32, "x" * 32)
    assert _code(lambda: stranger.call_json("GatewayTestEcho", {"Name": "a"})) == "AuthFailure.SecretIdNotFound"


def test_stale_timestamp_is_signature_expire(client, monkeypatch):
    class TenMinutesAgo:
        @staticmethod
        def time() -> float:
            return time.time() - 600

    monkeypatch.setattr(abstract_client, "time", TenMinutesAgo)
    assert _code(lambda: client.call_json("GatewayTestEcho", {"Name": "a"})) == "AuthFailure.SignatureExpire"


def test_unknown_action(client):
    assert _code(lambda: client.call_json("NoSuchAction", {})) == "InvalidAction"


def test_validation_errors_name_the_field(client):
    with pytest.raises(TencentCloudSDKException) as err:
        client.call_json("GatewayTestEcho", {})
    assert err.value.code == "MissingParameter" and "Name" in err.value.message
    with pytest.raises(TencentCloudSDKException) as err:
        client.call_json("GatewayTestEcho", {"Name": "a", "Count": "many"})
    assert err.value.code == "InvalidParameter" and "Count" in err.value.message
    with pytest.raises(TencentCloudSDKException) as err:
        client.call_json("GatewayTestEcho", {"Name": "a", "Count": 11})
    assert err.value.code == "InvalidParameterValue" and "Count" in err.value.message


def test_language_selects_message(server, account):
    english = server.client(account, language="en-US")
    with pytest.raises(TencentCloudSDKException) as err:
        english.call_json("NoSuchAction", {})
    assert "does not exist" in err.value.message
    chinese = server.client(account, language="zh-CN")
    with pytest.raises(TencentCloudSDKException) as err:
        chinese.call_json("NoSuchAction", {})
    assert "不存在" in err.value.message


def test_get_form_is_understood(server, account):
    from tencentcloud.common import credential
    from tencentcloud.iai.v20200303 import iai_client

    http = HttpProfile(endpoint=server.endpoint, protocol="http", reqMethod="GET")
    client = iai_client.IaiClient(
        credential.Credential(account.secret_id, account.secret_key),
        "ap-guangzhou",
        ClientProfile(httpProfile=http),
    )
    response = client.call_json("GatewayTestEcho", {"Name": "b", "Count": 2, "Tags": ["p", "q"]})["Response"]
    assert (response["Name"], response["Count"], response["Tags"]) == ("b", 2, ["p", "q"])


def _signed_post(server, account, action_name: str, body: bytes, timestamp: int | None = None, **extra: str):  # type: ignore[no-untyped-def]
    headers = tc3.sign_headers(
        secret_id=account.secret_id,
        secret_key=account.secret_key,
        action=action_name,
        body=body,
        host=server.endpoint,
        timestamp=timestamp or int(time.time()),
    )
    headers.update(extra)
    return httpx.post(server.url + "/", content=body, headers=headers)


def test_errors_are_http_200_with_exact_content_type(server, account):
    reply = _signed_post(server, account, "NoSuchAction", b"{}")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()["Response"]
    assert error["Error"]["Code"] == "InvalidAction" and error["RequestId"]


def test_malformed_json_and_non_object(server, account):
    for body in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        reply = _signed_post(server, account, "GatewayTestEcho", body).json()["Response"]
        assert reply["Error"]["Code"] == "InvalidParameter"


def test_wrong_version(server, account):
    reply = _signed_post(server, account, "GatewayTestEcho", b'{"Name": "v"}', **{"X-TC-Version": "2017-01-01"})
    assert reply.json()["Response"]["Error"]["Code"] == "NoSuchVersion"


def test_body_limit_applies_before_parsing(server, account):
    body = b'{"Name": "' + b"x" * (server.runtime.settings.max_body_bytes + 1) + b'"}'
    reply = _signed_post(server, account, "GatewayTestEcho", body).json()["Response"]
    assert reply["Error"]["Code"] == "RequestSizeLimitExceeded"


def test_tampered_body_fails_signature(server, account):
    headers = tc3.sign_headers(
        secret_id=account.secret_id,
        secret_key=account.secret_key,
        action="GatewayTestEcho",
        body=b'{"Name": "a"}',
        host=server.endpoint,
        timestamp=int(time.time()),
    )
    reply = httpx.post(server.url + "/", content=b'{"Name": "b"}', headers=headers).json()["Response"]
    assert reply["Error"]["Code"] == "AuthFailure.SignatureFailure"


def test_disabled_account_and_rotated_keys(server):
    accounts = server.runtime.accounts
    creds = server.new_account("rotating")
    info = accounts.find(creds.secret_id)
    fresh = accounts.rotate_key(info.id)
    old_client, new_client = server.client(creds), server.client(fresh)
    assert _code(lambda: old_client.call_json("GatewayTestEcho", {"Name": "a"})) == "AuthFailure.SecretIdNotFound"
    assert new_client.call_json("GatewayTestEcho", {"Name": "a"})["Response"]["Name"] == "a"
    accounts.set_status(info.id, "disabled")
    assert _code(lambda: new_client.call_json("GatewayTestEcho", {"Name": "a"})) == "AuthFailure.SecretIdNotFound"


def test_secret_keys_are_encrypted_at_rest(server, account):
    from sqlalchemy import text

    with server.runtime.db.session() as s:
        stored = s.execute(
            text("select secret_key_encrypted from api_keys where secret_id = :i"), {"i": account.secret_id}
        ).scalar_one()
    assert account.secret_key not in stored


def test_health_and_metrics(server, client):
    client.call_json("GatewayTestEcho", {"Name": "m"})
    assert httpx.get(server.url + "/healthz").json()["status"] == "ok"
    metrics = httpx.get(server.url + "/metrics").text
    assert 'facecloud_requests_total{action="GatewayTestEcho",code="Success"}' in metrics
    assert "facecloud_request_seconds_bucket" in metrics
