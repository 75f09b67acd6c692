"""The alert outbox reaches Settings.webhook_url from a thread; a dead webhook never blocks a call."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from facecloud.runtime import Runtime
from tests.billing.helpers import record_many, set_pack_remaining
from tests.conftest import free_port
from tests.conftest import test_settings as settings_in

AT = datetime(2025, 5, 10, 4, 0, tzinfo=UTC)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def _runtime_with_exhausted_pack(tmp_path: Path, url: str) -> tuple[Runtime, int, int]:
    runtime = Runtime(settings_in(tmp_path, webhook_url=url))
    account = runtime.accounts.find(str(runtime.accounts.create("hook").app_id)).id
    runtime.billing.top_up(account, "1000")
    pack = runtime.billing.buy_pack(account, "detect", 1_000_000, at=AT)
    record_many(runtime.billing, account, "detect", 10_000, AT)
    set_pack_remaining(runtime.billing, pack["id"], 1)
    return runtime, account, pack["id"]


def test_alerts_are_posted_to_the_webhook(tmp_path: Path, webhook: tuple[str, list[dict[str, object]]]) -> None:
    url, received = webhook
    runtime, account, pack_id = _runtime_with_exhausted_pack(tmp_path, url)
    try:
        runtime.billing.record_call(account, "detect", "DetectFace", "last-call", at=AT)
        deadline = time.time() + 10
        while len(received) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert sorted(r["alert"]["kind"] for r in received) == ["pack_exhausted", "pack_low"]
        assert all(r["alert"]["pack_id"] == pack_id for r in received)
        deadline = time.time() + 5
        while any(a["delivered_at"] is None for a in runtime.billing.alerts(account)) and time.time() < deadline:
            time.sleep(0.05)
        assert all(a["delivered_at"] for a in runtime.billing.alerts(account))
    finally:
        runtime.close()


def test_a_dead_webhook_neither_blocks_nor_fails_a_call(tmp_path: Path) -> None:
    runtime, account, _ = _runtime_with_exhausted_pack(tmp_path, f"http://127.0.0.1:{free_port()}/nobody")
    try:
        started = time.perf_counter()
        runtime.billing.record_call(account, "detect", "DetectFace", "last-call", at=AT)
        assert time.perf_counter() - started < 2
        # The sender thread may hold the outbox (one deliverer per installation): wait until both were tried.
        deadline = time.time() + 10
        while any(a["attempts"] < 1 for a in runtime.billing.alerts(account)) and time.time() < deadline:
            assert runtime.billing.webhook.deliver_pending() == 0
            time.sleep(0.05)
        assert runtime.billing.webhook.deliver_pending() == 0
        alerts = runtime.billing.alerts(account)
        assert len(alerts) == 2 and all(a["delivered_at"] is None and a["attempts"] >= 1 for a in alerts)
    finally:
        runtime.close()
