"""Durability of metering: SIGKILL a real server process in the middle of a stream of billable calls.

After a restart, every call the client saw succeed (or fail with the billable NoFaceInPhoto) is in the ledger
exactly once, no call the client saw fail with another error is there, and nothing else is, except at most the
calls that were in flight when the process died (committed, but their answer never left: the client saw no
answer at all, so it cannot know). The server is `billable_server.py` (see there why it registers a test-only
action)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from facecloud.accounts import Credentials
from facecloud.billing.models import UsageEntry, UsageMonth
from facecloud.billing.periods import month_start
from facecloud.runtime import Runtime
from tests.billing.helpers import record_many
from tests.conftest import free_port, sdk_client
from tests.conftest import test_settings as settings_in

LAUNCHER = Path(__file__).with_name("billable_server.py")
REPO = Path(__file__).resolve().parents[2]
CLIENTS = 4
CALLS_BEFORE_KILL = 300


class ServerProcess:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FACECLOUD_")}
        env["PYTHONPATH"] = str(REPO)
        self.process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--port", str(self.port), "--data-dir", str(data_dir)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"server did not start: {self.process.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)

    def client(self, creds: Credentials):  # type: ignore[no-untyped-def]
        return sdk_client(f"127.0.0.1:{self.port}", creds.secret_id, creds.secret_key)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def _setup_account(data_dir: Path) -> tuple[Credentials, int]:
    runtime = Runtime(settings_in(data_dir))
    try:
        creds = runtime.accounts.create("crash")
        return creds, runtime.accounts.find(creds.secret_id).id
    finally:
        runtime.close()


def _outcome_for(n: int) -> str:
    return "Free" if n % 5 == 0 else "NoFace" if n % 7 == 0 else "Success"


def _stream(
    server: ServerProcess,
    creds: Credentials,
    stop: threading.Event,
    seen: dict[str, list[str]],
    lock: threading.Lock,
    worker: int,
) -> None:
    client = server.client(creds)
    n = worker
    while not stop.is_set():
        outcome = _outcome_for(n)
        n += CLIENTS
        try:
            # A distinct body per call, so that each RequestId in the ledger maps to one call of this test.
            answer = client.call_json("_TestBillable", {"Outcome": outcome, "Nonce": f"{worker}-{n}"})
            kind, request_id = "billable", answer["Response"]["RequestId"]
        except TencentCloudSDKException as error:
            if error.code == "InvalidParameterValue.NoFaceInPhoto":
                kind, request_id = "billable", error.requestId
            elif error.code == "InvalidParameterValue":
                kind, request_id = "free", error.requestId
            elif error.code == "ClientNetworkError":  # no answer: the process died with this call in flight
                kind, request_id = "unanswered", ""
                stop.set()
            else:
                kind, request_id = "unexpected", f"{error.code}: {error.message}"
        with lock:
            seen[kind].append(request_id)


def _ledger(data_dir: Path, account_id: int) -> tuple[list[str], int]:
    runtime = Runtime(settings_in(data_dir))
    try:
        with runtime.db.session() as s:
            ids = list(s.scalars(select(UsageEntry.request_id).where(UsageEntry.account_id == account_id)))
            counted = s.scalar(
                select(func.coalesce(func.sum(UsageMonth.calls), 0)).where(UsageMonth.account_id == account_id)
            )
        return ids, int(counted)
    finally:
        runtime.close()


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_acknowledged_call_and_invents_none(data_dir: Path) -> None:
    creds, account_id = _setup_account(data_dir)
    server = ServerProcess(data_dir)
    seen: dict[str, list[str]] = {"billable": [], "free": [], "unanswered": [], "unexpected": []}
    lock, stop = threading.Lock(), threading.Event()
    threads = [threading.Thread(target=_stream, args=(server, creds, stop, seen, lock, i)) for i in range(CLIENTS)]
    try:
        for t in threads:
            t.start()
        started, deadline = time.time(), time.time() + 60
        while len(seen["billable"]) < CALLS_BEFORE_KILL and time.time() < deadline:
            time.sleep(0.005)
        server.kill()  # SIGKILL: no shutdown handler, no flush, in the middle of the stream
        print(f"killed after {time.time() - started:.1f} s, {len(seen['billable'])} billable calls answered")
        for t in threads:
            t.join(timeout=30)
    finally:
        stop.set()
        server.stop()
    assert seen["unexpected"] == []
    assert len(seen["billable"]) >= CALLS_BEFORE_KILL and seen["free"]

    restarted = ServerProcess(data_dir)  # recovery: the server starts on the same data and serves again
    try:
        after = restarted.client(creds).call_json("_TestBillable", {"Outcome": "Success"})["Response"]["RequestId"]
    finally:
        restarted.stop()

    ids, counted = _ledger(data_dir, account_id)
    acknowledged = set(seen["billable"]) | {after}
    assert len(ids) == len(set(ids))  # exactly once
    assert acknowledged <= set(ids)  # every call the client saw billed is there
    assert not set(seen["free"]) & set(ids)  # no call the client saw fail (for free) is there
    extra = set(ids) - acknowledged  # committed while the process died: answered to nobody
    assert len(extra) <= len(seen["unanswered"]) <= CLIENTS
    assert counted == len(ids)  # counters consistent with the ledger


@pytest.mark.slow
def test_gateway_refuses_billable_calls_in_arrears_before_any_work(data_dir: Path) -> None:
    creds, account_id = _setup_account(data_dir)
    runtime = Runtime(settings_in(data_dir))
    try:
        last_month = month_start(runtime.billing.current_month(), runtime.billing.zone) - timedelta(days=3)
        record_many(runtime.billing, account_id, "detect", 30_000, last_month)  # 20,000 postpaid: 10.00 CNY
        bill = runtime.billing.settle(account_id, runtime.billing.previous_month())
        assert (bill["total"], bill["in_arrears"]) == ("10.00", True)
    finally:
        runtime.close()
    server = ServerProcess(data_dir)
    try:
        client = server.client(creds)
        with pytest.raises(TencentCloudSDKException) as refused:
            client.call_json("_TestBillable", {"Outcome": "Success"})
        assert refused.value.code == "ResourceUnavailable.InArrears"
        topped = subprocess.run(
            [
                str(Path(sys.executable).with_name("facecloud")),
                "billing",
                "topup",
                creds.secret_id,
                "--amount",
                "22.00",
                "--data-dir",
                str(data_dir),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("FACECLOUD_")},
        )
        assert json.loads(topped.stdout)["in_arrears"] is False  # 22.00 pays 10.00 and the 12.00 freeze
        answer = client.call_json("_TestBillable", {"Outcome": "Success"})["Response"]
    finally:
        server.stop()
    ids, _ = _ledger(data_dir, account_id)
    assert refused.value.requestId not in ids and answer["RequestId"] in ids
