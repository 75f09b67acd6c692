"""The alert outbox: rows written in the same transaction as what caused them (pack low/exhausted, arrears),
shown by the console and POSTed to Settings.webhook_url by a background thread. Delivery never runs on a
request's thread, so a slow or failing webhook cannot block or fail a call."""

from __future__ import annotations

import logging
import threading

import httpx
from sqlalchemy import select, update

from facecloud.billing.models import Alert
from facecloud.billing.periods import utcnow
from facecloud.db import Database

log = logging.getLogger("facecloud.billing")

MAX_ATTEMPTS = 5
RETRY_AFTER_S = 30.0


def alert_json(row: object) -> dict[str, object]:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "kind": row.kind,
        "pack_id": row.pack_id,  # type: ignore[attr-defined]
        "service": row.service,
        "message": row.message,  # type: ignore[attr-defined]
        "created_at": row.created_at.isoformat(),  # type: ignore[attr-defined]
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,  # type: ignore[attr-defined]
        "attempts": row.attempts,
        "last_error": row.last_error,  # type: ignore[attr-defined]
    }


class WebhookSender:
    """Sends undelivered alerts, each as one JSON POST, retrying up to MAX_ATTEMPTS times."""

    def __init__(self, db: Database, url: str, timeout_s: float = 5.0) -> None:
        self._db = db
        self._url = url
        self._timeout_s = timeout_s
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def notify(self) -> None:
        """Wake the sender (starting it on first use); returns at once."""
        if not self._url:
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="billing-webhook", daemon=True)
                self._thread.start()
        self._wake.set()

    def deliver_pending(self) -> int:
        """Try each undelivered alert once; returns how many were delivered. One process of the installation
        delivers at a time (the others return 0 and leave the outbox to it), so no alert is posted twice."""
        if not self._url:
            return 0
        with self._db.exclusive("billing-alerts") as held:
            return self._deliver() if held else 0

    def _deliver(self) -> int:
        t = Alert.__table__
        with self._db.engine.connect() as conn:
            pending = conn.execute(
                select(t).where(t.c.delivered_at.is_(None), t.c.attempts < MAX_ATTEMPTS).order_by(t.c.id).limit(100)
            ).all()
        delivered = 0
        with httpx.Client(timeout=self._timeout_s) as http:
            for row in pending:
                error = ""
                try:
                    http.post(
                        self._url, json={"type": "facecloud.billing.alert", "alert": alert_json(row)}
                    ).raise_for_status()
                except httpx.HTTPError as exc:
                    error = str(exc)[:250] or type(exc).__name__
                with self._db.engine.begin() as conn:
                    conn.execute(
                        update(t)
                        .where(t.c.id == row.id)
                        .values(
                            attempts=t.c.attempts + 1,
                            last_error=error,
                            delivered_at=None if error else utcnow(),
                        )
                    )
                delivered += not error
        return delivered

    def _run(self) -> None:
        while True:
            self._wake.wait(timeout=RETRY_AFTER_S)
            self._wake.clear()
            try:
                self.deliver_pending()
            except Exception:  # the outbox keeps the alert; the next wake retries
                log.exception("billing: webhook delivery failed")
