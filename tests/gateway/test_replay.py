"""Replays and ordinary call sequences (docs/security.md, "Replays").

Tencent's SDKs sign with a one-second timestamp and do not sign X-TC-Action, so a program that makes two calls with
the same body within a second sends the same signature twice. The default ("window") mode serves them, as Tencent
does; what a signature does bind (key, body, timestamp, host, and the action where the client signed it) cannot be
changed. The strict mode (opt-in) refuses a seen signature for a write or billable call."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from tencentcloud.common import abstract_client
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from facecloud.billing.models import UsageEntry
from facecloud.gateway.registry import ActionContext, TencentRequest, action, registry
from facecloud.runtime import Runtime
from tests import conftest
from tests.conftest import LiveServer, need_data
from tests.hardening.support import signed_post


class ReplayEchoRequest(TencentRequest):
    Name: str


def _echo(req: ReplayEchoRequest, ctx: ActionContext) -> dict:
    return {"Name": req.Name}


if "ReplayTestWrite" not in registry():
    action("ReplayTestWrite", ReplayEchoRequest)(_echo)
    action("GetReplayTestRead", ReplayEchoRequest)(_echo)


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    """The SDK signs every call of the test with the same one-second timestamp."""
    now = float(int(time.time()))

    class Frozen:
        @staticmethod
        def time() -> float:
            return now

    monkeypatch.setattr(abstract_client, "time", Frozen)
    return now


def photo(person: str) -> str:
    path = sorted(need_data("lfw-dev", "lfw-deepfunneled", person).glob("*.jpg"))[0]
    return base64.b64encode(path.read_bytes()).decode()


def call(url: str, creds, action_name: str, body: bytes, **options) -> dict:  # type: ignore[no-untyped-def]
    return signed_post(url, creds, action_name, body, timeout=60, **options).json()["Response"]


def ledger_rows(server: LiveServer, secret_id: str, action_name: str) -> int:
    account_id = server.runtime.accounts.find(secret_id).id
    with server.runtime.db.session() as s:
        return s.scalar(
            select(func.count())
            .select_from(UsageEntry)
            .where(UsageEntry.account_id == account_id, UsageEntry.action == action_name)
        )


def test_four_ordinary_sequences_signed_within_one_second_are_served(server, account, client, frozen_clock):
    image = {"Image": photo("Colin_Powell")}
    # 1. The same DetectFace twice: both served, both billed.
    first = client.call_json("DetectFace", image)["Response"]
    second = client.call_json("DetectFace", image)["Response"]
    assert first["FaceInfos"] and second["FaceInfos"] and first["RequestId"] != second["RequestId"]
    assert ledger_rows(server, account.secret_id, "DetectFace") == 2

    client.call_json("CreateGroup", {"GroupId": "seq", "GroupName": "seq"})
    client.call_json("CreatePerson", {"GroupId": "seq", "PersonId": "p1", "PersonName": "p1", **image})
    client.call_json("CreatePerson", {"GroupId": "seq", "PersonId": "p2", "PersonName": "p2", **image})
    # 2. SearchFaces then SearchPersons with one body.
    body = {"GroupIds": ["seq"], **image}
    faces = client.call_json("SearchFaces", body)["Response"]
    persons = client.call_json("SearchPersons", body)["Response"]
    assert faces["Results"][0]["Candidates"] and persons["Results"][0]["Candidates"]
    # 3. GetPersonBaseInfo then DeletePerson.
    assert client.call_json("GetPersonBaseInfo", {"PersonId": "p2"})["Response"]["PersonName"] == "p2"
    client.call_json("DeletePerson", {"PersonId": "p2"})
    with pytest.raises(TencentCloudSDKException) as gone:
        client.call_json("GetPersonBaseInfo", {"PersonId": "p2"})
    assert gone.value.code == "InvalidParameterValue.PersonIdNotExist"
    # 4. GetPersonListNum then DeleteGroup.
    assert client.call_json("GetPersonListNum", {"GroupId": "seq"})["Response"]["PersonNum"] == 1
    client.call_json("DeleteGroup", {"GroupId": "seq"})
    assert client.call_json("GetGroupList", {})["Response"]["GroupNum"] == 0


def test_a_retried_request_is_served_and_billed_again(server, account):
    """A client (or a proxy) re-sending the very bytes of a call that timed out: Tencent serves and bills both."""
    body = json.dumps({"Image": photo("Tony_Blair")}).encode()
    timestamp = int(time.time())
    answers = [call(server.url, account, "DetectFace", body, timestamp=timestamp) for _ in range(2)]
    assert all(a["FaceInfos"] for a in answers)
    assert ledger_rows(server, account.secret_id, "DetectFace") == 2


def test_a_request_that_signed_its_action_cannot_be_resent_as_another(server, account):
    body = json.dumps({"Name": "x"}).encode()
    timestamp = int(time.time())
    assert call(server.url, account, "GetReplayTestRead", body, timestamp=timestamp, sign_action=True)["Name"] == "x"
    resent = call(
        server.url, account, "GetReplayTestRead", body, timestamp=timestamp, sign_action=True,
        **{"X-TC-Action": "ReplayTestWrite"},
    )  # fmt: skip
    assert resent["Error"]["Code"] == "AuthFailure.SignatureFailure"


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    runtime = Runtime(conftest.test_settings(tmp_path_factory.mktemp("strict"), replay_mode="strict"))
    yield from conftest._serve(runtime)


def test_strict_mode_refuses_a_seen_signature_for_a_write_but_serves_reads(strict_server):
    creds = strict_server.new_account()
    body = json.dumps({"Name": "s"}).encode()
    timestamp = int(time.time())

    def send(sent_as: str) -> dict:
        return call(
            strict_server.url, creds, "GetReplayTestRead", body, timestamp=timestamp, **{"X-TC-Action": sent_as}
        )

    assert send("GetReplayTestRead")["Name"] == "s"
    assert send("GetReplayTestRead")["Name"] == "s"
    refused = send("ReplayTestWrite")
    assert refused["Error"]["Code"] == "AuthFailure.SignatureFailure" and "严格" in refused["Error"]["Message"]


def test_an_unknown_replay_mode_is_refused_at_start(tmp_path):
    from facecloud.gateway.app import create_app

    runtime = Runtime(conftest.test_settings(tmp_path, replay_mode="sometimes"))
    try:
        with pytest.raises(ValueError, match="FACECLOUD_REPLAY_MODE"):
            create_app(runtime)
    finally:
        runtime.close()
