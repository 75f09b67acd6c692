"""Fuzzing the gateway with hypothesis: random JSON and bytes, wrong types, hostile headers, forged and
replayed signatures, GET queries. Every answer must be a Tencent-style envelope (HTTP 200, application/json,
a RequestId, success or a non-internal error code), never a 500, a hang or a dead server.

schemathesis is not used: it needs an OpenAPI description, and TC3 (one POST / whose meaning lies in signed
headers) does not fit one, so the strategies below speak the protocol directly."""

from __future__ import annotations

import json
import string
import time
import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from facecloud.gateway import tc3
from facecloud.gateway.registry import ActionContext, TencentRequest, action, registry
from facecloud.runtime import Runtime
from tests.conftest import _serve
from tests.conftest import test_settings as make_settings
from tests.hardening.support import FUZZ_CASES, assert_tencent_answer, signed_get, signed_post

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Inner(BaseModel):
    Key: str = Field(max_length=16)
    Value: int = Field(ge=0, le=1000)


class TypedRequest(TencentRequest):
    Name: str = Field(max_length=64)
    Count: int = Field(1, ge=1, le=100)
    Ratio: float = Field(0.5, ge=0, le=1)
    Flag: bool = False
    Tags: list[str] = Field(default_factory=list, max_length=10)
    Nested: Inner | None = None
    Items: list[Inner] = Field(default_factory=list, max_length=5)


def typed(req: TypedRequest, ctx: ActionContext) -> dict:
    return {"Name": req.Name, "Count": req.Count, "Items": len(req.Items)}


if "HardeningTyped" not in registry():
    action("HardeningTyped", TypedRequest)(typed)

FIELDS = list(TypedRequest.model_fields) + list(Inner.model_fields)
ASCII = string.ascii_letters + string.digits + string.punctuation + " "


def header_text(max_size: int) -> st.SearchStrategy[str]:
    # HTTP clients refuse header values with surrounding whitespace; inner spaces are fine.
    return st.text(ASCII, max_size=max_size).map(str.strip)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=30,
)
# Objects that look like the request: the right field names with values of any type.
shaped_objects = st.fixed_dictionaries({}, optional={name: json_values for name in FIELDS})


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    runtime = Runtime(make_settings(tmp_path_factory.mktemp("fuzz"), rate_limit_qps=0, rate_limit_qps_live_accurate=0))
    for server in _serve(runtime):
        server.creds = server.new_account("fuzz")  # type: ignore[attr-defined]
        server.http = httpx.Client()  # type: ignore[attr-defined]
        yield server
        # The server is still up and still answers a correct call after everything above.
        ok = signed_post(server.url, server.creds, "HardeningTyped", b'{"Name": "alive"}').json()["Response"]
        assert ok["Name"] == "alive"
        server.http.close()


def _post(server, body: bytes, action_name: str = "HardeningTyped", **headers: str) -> dict:  # type: ignore[no-untyped-def]
    return assert_tencent_answer(
        signed_post(server.url, server.creds, action_name, body, client=server.http, **headers)
    )


@FUZZ
@given(value=json_values | shaped_objects)
def test_fuzz_json_values(fuzz_server, value):
    FUZZ_CASES["json values"] += 1
    response = _post(fuzz_server, json.dumps(value).encode())
    if "Error" in response:
        assert response["Error"]["Code"].split(".")[0] in {
            "InvalidParameter",
            "InvalidParameterValue",
            "MissingParameter",
        }


@FUZZ
@given(body=st.binary(max_size=512) | st.text(max_size=200).map(str.encode))
def test_fuzz_raw_bodies(fuzz_server, body):
    FUZZ_CASES["raw bodies"] += 1
    _post(fuzz_server, body)


@FUZZ
@given(
    authorization=st.none()
    | header_text(200)
    | st.builds(
        lambda sid, date, svc, hdrs, sig: (
            f"TC3-HMAC-SHA256 Credential={sid}/{date}/{svc}/tc3_request, SignedHeaders={hdrs}, Signature={sig}"
        ),
        st.text(string.ascii_letters + string.digits, min_size=1, max_size=40),
        st.dates().map(str),
        st.sampled_from(["iai", "cvm", "x"]),
        st.sampled_from(["content-type;host", "host", "content-type;host;x-tc-action", "a;b"]),
        st.text("0123456789abcdef", min_size=64, max_size=64),
    ),
    timestamp=st.none() | st.integers(-(2**63), 2**63).map(str) | header_text(20),
    action_name=header_text(40),
    version=st.sampled_from(["2020-03-03", "2018-03-01", ""]) | header_text(12),
    language=st.sampled_from(["zh-CN", "en-US", "fr-FR", ""]),
    token=st.sampled_from(["", "tok"]),
)
def test_fuzz_unsigned_and_forged_headers(fuzz_server, authorization, timestamp, action_name, version, language, token):
    FUZZ_CASES["hostile headers"] += 1
    headers = {
        "Content-Type": "application/json",
        "X-TC-Action": action_name,
        "X-TC-Version": version,
        "X-TC-Language": language,
    }
    if authorization is not None:
        headers["Authorization"] = authorization
    if timestamp is not None:
        headers["X-TC-Timestamp"] = timestamp
    if token:
        headers["X-TC-Token"] = token
    reply = fuzz_server.http.post(fuzz_server.url + "/", content=b'{"Name": "x"}', headers=headers, timeout=30)
    response = assert_tencent_answer(reply)
    # Nothing forged gets through: no valid secret key signed these.
    assert response["Error"]["Code"].startswith(("AuthFailure", "MissingParameter", "InvalidParameter"))


@FUZZ
@given(
    body=json_values.map(lambda v: json.dumps(v).encode()),
    forgery=st.sampled_from(["wrong key", "other account's id", "tampered body", "flipped signature", "clock skew"]),
)
def test_fuzz_forged_signatures(fuzz_server, body, forgery):
    FUZZ_CASES["forged signatures"] += 1
    server, creds, now = fuzz_server, fuzz_server.creds, int(time.time())
    host = server.endpoint
    if forgery == "wrong key":
        headers = tc3.sign_headers(
            secret_id=creds.secret_id,
            secret_key="k" * 32,
            action="HardeningTyped",
            body=body,
            host=host,
            timestamp=now,
        )
    elif forgery == "other account's id":
        headers = tc3.sign_headers(
            secret_id=server.other.secret_id,
            secret_key=creds.secret_key,
            action="HardeningTyped",
            body=body,
            host=host,
            timestamp=now,
        )
    elif forgery == "tampered body":
        headers = tc3.sign_headers(
            secret_id=creds.secret_id,
            secret_key=creds.secret_key,
            action="HardeningTyped",
            body=body,
            host=host,
            timestamp=now,
        )
        body = body + b" "
    elif forgery == "flipped signature":
        headers = tc3.sign_headers(
            secret_id=creds.secret_id,
            secret_key=creds.secret_key,
            action="HardeningTyped",
            body=body,
            host=host,
            timestamp=now,
        )
        sig = headers["Authorization"][-64:]
        flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        headers["Authorization"] = headers["Authorization"][:-64] + flipped
    else:
        headers = tc3.sign_headers(
            secret_id=creds.secret_id,
            secret_key=creds.secret_key,
            action="HardeningTyped",
            body=body,
            host=host,
            timestamp=now - 3600,
        )
    response = assert_tencent_answer(server.http.post(server.url + "/", content=body, headers=headers))
    assert response["Error"]["Code"] in {"AuthFailure.SignatureFailure", "AuthFailure.SignatureExpire"}


@pytest.fixture(scope="module", autouse=True)
def _other_account(fuzz_server):  # type: ignore[no-untyped-def]
    fuzz_server.other = fuzz_server.new_account("fuzz-other")


@FUZZ
@given(note=st.text(max_size=30), resent_as=st.sampled_from(["HardeningTyped", "GetHardeningTyped", "DeletePerson"]))
def test_fuzz_replayed_signatures(fuzz_server, note, resent_as):
    """Re-sent bytes are served as Tencent serves them, unless the re-sender changed what the client signed."""
    FUZZ_CASES["replayed signatures"] += 1
    body = json.dumps({"Name": f"{uuid.uuid4()}{note}"[:64]}).encode()
    now = int(time.time())
    first = _post_at(fuzz_server, body, now)
    again = _post_at(fuzz_server, body, now)
    assert again.keys() - {"RequestId"} == first.keys() - {"RequestId"}
    resent = _post_at(fuzz_server, body, now, sign_action=True, **{"X-TC-Action": resent_as})
    if resent_as != "HardeningTyped":
        assert resent["Error"]["Code"] == "AuthFailure.SignatureFailure"


def _post_at(server, body: bytes, timestamp: int, sign_action: bool = False, **headers: str) -> dict:  # type: ignore[no-untyped-def]
    reply = signed_post(
        server.url,
        server.creds,
        "HardeningTyped",
        body,
        timestamp=timestamp,
        client=server.http,
        sign_action=sign_action,
        **headers,
    )
    return assert_tencent_answer(reply)


@FUZZ
@given(action_name=st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=60))
def test_fuzz_unknown_actions(fuzz_server, action_name):
    FUZZ_CASES["unknown actions"] += 1
    response = _post(fuzz_server, b"{}", action_name=action_name)
    if action_name not in registry():
        assert response["Error"]["Code"] == "InvalidAction"


query_keys = st.lists(
    st.sampled_from(FIELDS + ["Tags.0", "Tags.1", "Items.0.Key", "Items.0.Value", "Nested.Key", "0", "A.B.C", ""])
    | st.text(string.ascii_letters + string.digits + "._", max_size=12),
    max_size=6,
)


@FUZZ
@given(keys=query_keys, values=st.lists(st.text(max_size=20), min_size=6, max_size=6))
def test_fuzz_get_queries(fuzz_server, keys, values):
    FUZZ_CASES["GET queries"] += 1
    from urllib.parse import quote

    query = "&".join(f"{quote(k, safe='.')}={quote(v, safe='')}" for k, v in zip(keys, values, strict=False))
    assert_tencent_answer(signed_get(fuzz_server.url, fuzz_server.creds, "HardeningTyped", query))


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"Name": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
        b'{"Name": "x", "Count": 1' + b"0" * 5000 + b"}",
        b'{"Name": "x", "Ratio": 1e999}',
        b'{"Name": "x", "Ratio": NaN}',
        b'{"Name": "\\ud800"}',
        b'{"Name": "x", "Name": 5}',
        b"\xef\xbb\xbf" + b'{"Name": "bom"}',
        b'{"Name": "x"} trailing',
        b"\x00" * 1000,
    ],
)
def test_pathological_json(fuzz_server, body):
    FUZZ_CASES["pathological JSON"] += 1
    _post(fuzz_server, body)


def test_oversized_headers_and_query_do_not_crash(fuzz_server):
    FUZZ_CASES["pathological JSON"] += 1
    huge = "x" * 200_000
    try:
        reply = fuzz_server.http.post(
            fuzz_server.url + "/",
            content=b"{}",
            headers={"Authorization": huge, "Content-Type": "application/json"},
        )
        assert reply.status_code in (200, 400, 431)
    except httpx.HTTPError:
        pass  # the server may drop an oversized header block; it must stay up (checked at teardown)
    reply = signed_get(fuzz_server.url, fuzz_server.creds, "HardeningTyped", "Name=" + "y" * 60_000)
    assert_tencent_answer(reply)
