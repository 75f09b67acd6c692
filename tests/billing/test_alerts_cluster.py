"""Several processes (nodes or workers) deliver the alert outbox together: each alert reaches the webhook once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from facecloud.billing.alerts import WebhookSender
from facecloud.billing.models import Alert
from facecloud.billing.periods import utcnow
from facecloud.db import Database
from facecloud.runtime import Runtime
from tests.conftest import fresh_postgres_database
from tests.conftest import test_settings as settings_in


@pytest.fixture
def slow_webhook() -> Iterator[tuple[str, list[int]]]:
    received: list[int] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(0.05)  # slow enough for the senders to overlap
            received.append(body["alert"]["id"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "postgres":
        with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
            yield url
        return
    yield ""


def test_four_senders_post_each_alert_once(
    database_url: str, tmp_path: Path, slow_webhook: tuple[str, list[int]]
) -> None:
    url, received = slow_webhook
    runtime = Runtime(settings_in(tmp_path, database_url=database_url or None))
    try:
        account = runtime.accounts.find(str(runtime.accounts.create("a").app_id)).id
        with runtime.db.session() as s:
            for n in range(20):
                s.add(
                    Alert(account_id=account, kind="pack_low", service="detect", message=f"m{n}", created_at=utcnow())
                )
        nodes = [Database(runtime.settings.resolved_database_url) for _ in range(4)]
        senders = [WebhookSender(db, url) for db in nodes]
        deadline = time.time() + 30
        while len(received) < 20 and time.time() < deadline:
            threads = [threading.Thread(target=sender.deliver_pending) for sender in senders]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert sorted(received) == sorted(set(received)) and len(received) == 20
        assert all(a["delivered_at"] for a in runtime.billing.alerts(account))
        for db in nodes:
            db.dispose()
    finally:
        runtime.close()
