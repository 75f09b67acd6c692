"""Deadlines: a slow handler is answered FailedOperation.RequestTimeout and never billed; a stalled body is cut off."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from pydantic import Field

from facecloud.gateway.registry import ActionContext, TencentRequest, action, registry
from facecloud.runtime import Runtime
from tests.conftest import _serve
from tests.conftest import test_settings as make_settings
from tests.hardening.support import call


class SlowRequest(TencentRequest):
    Seconds: float = Field(0, ge=0, le=5)


def slow(req: SlowRequest, ctx: ActionContext) -> dict:
    time.sleep(req.Seconds)
    return {"Slept": req.Seconds}


if "HardeningSlowBillable" not in registry():
    action("HardeningSlowBillable", SlowRequest, service="detect")(slow)


class RecordingBilling:
    """Stands in for facecloud.billing: this test is about the gateway's exactly-once rule, not prices."""

    def __init__(self) -> None:
        self.recorded: list[str] = []
        self._lock = threading.Lock()

    def ensure_can_bill(self, account_id: int, service: str) -> None:
        pass

    def record_call(self, account_id: int, service: str, action_name: str, request_id: str) -> None:
        with self._lock:
            self.recorded.append(request_id)


@pytest.fixture(scope="module")
def deadline_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("deadline"), request_timeout_s=0.5, body_read_timeout_s=0.5)
    runtime = Runtime(settings)
    runtime.__dict__["billing"] = RecordingBilling()
    yield from _serve(runtime)


def test_slow_handler_times_out_and_is_not_billed(deadline_server):
    creds = deadline_server.new_account("slow")
    billing = deadline_server.runtime.billing
    started = time.monotonic()
    late = call(deadline_server.url, creds, "HardeningSlowBillable", {"Seconds": 1.5})
    assert late["Error"]["Code"] == "FailedOperation.RequestTimeout"
    assert time.monotonic() - started < 1.2
    quick = call(deadline_server.url, creds, "HardeningSlowBillable", {"Seconds": 0})
    assert "Error" not in quick
    time.sleep(1.3)  # the abandoned handler finishes in the background meanwhile
    assert billing.recorded.count(quick["RequestId"]) == 1
    assert late["RequestId"] not in billing.recorded


def test_slow_body_is_cut_off(deadline_server):
    """A client that declares a body and then stalls (slowloris) gets an answer within the body deadline."""
    host, port = "127.0.0.1", deadline_server.port
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-TC-Action: HardeningSlowBillable\r\n"
            b'Content-Length: 1000\r\n\r\n{"Seconds"'
        )
        started = time.monotonic()
        reply = b""
        while b"}}" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    assert time.monotonic() - started < 3
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0]
    assert json.loads(body)["Response"]["Error"]["Code"] == "FailedOperation.RequestTimeout"
