"""Test helpers: record many calls as ONE meter batch (the code path the writer thread runs per batch)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update

from facecloud.billing import Billing
from facecloud.billing.meter import Call, write_calls
from facecloud.billing.models import Pack
from facecloud.billing.store import write_transaction


def record_many(billing: Billing, account_id: int, service: str, n: int, at: datetime) -> None:
    calls = [Call(account_id, service, "Test", uuid.uuid4().hex, at) for _ in range(n)]
    with write_transaction(billing.db, [account_id]) as conn:
        write_calls(conn, calls, billing.catalog, billing.zone)


def set_pack_remaining(billing: Billing, pack_id: int, remaining: int) -> None:
    """Fast-forward a pack's use (instead of metering a million calls one by one)."""
    with billing.db.engine.begin() as conn:
        conn.execute(update(Pack.__table__).where(Pack.__table__.c.id == pack_id).values(remaining=remaining))
