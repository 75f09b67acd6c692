"""The meter: each billable call once, by RequestId, committed when record_call returns, paid in the right order."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from facecloud.billing import Billing
from facecloud.billing.models import UsageDay, UsageEntry, UsageMonth
from facecloud.db import Database

AT = datetime(2025, 5, 20, 4, 0, tzinfo=UTC)


def _entries(db: Database, account_id: int) -> list[tuple[str, str]]:
    with db.session() as s:
        rows = s.execute(
            select(UsageEntry.request_id, UsageEntry.source)
            .where(UsageEntry.account_id == account_id)
            .order_by(UsageEntry.id)
        )
        return [tuple(r) for r in rows]


def test_record_call_is_idempotent_per_request_id(billing: Billing, account_id: int) -> None:
    billing.record_call(account_id, "detect", "DetectFace", "req-1", at=AT)
    billing.record_call(account_id, "detect", "DetectFace", "req-1", at=AT)
    billing.record_call(account_id, "detect", "DetectFace", "req-2", at=AT)
    assert _entries(billing.db, account_id) == [("req-1", "free"), ("req-2", "free")]
    with billing.db.session() as s:
        month = s.get(UsageMonth, (account_id, "detect", "2025-05"))
        day = s.get(UsageDay, (account_id, "detect", "2025-05-20"))
        assert (month.calls, month.free_calls, day.calls) == (2, 2, 2)


def test_concurrent_callers_share_batches_and_each_call_is_recorded_once(billing: Billing, account_id: int) -> None:
    ids = [str(uuid.uuid4()) for _ in range(400)]

    def call(chunk: list[str]) -> None:
        for request_id in chunk:
            billing.record_call(account_id, "compare", "CompareFace", request_id, at=AT)

    threads = [threading.Thread(target=call, args=(ids[i::8] + ids[:5],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with billing.db.session() as s:
        count = s.scalar(select(func.count()).select_from(UsageEntry).where(UsageEntry.account_id == account_id))
        month = s.get(UsageMonth, (account_id, "compare", "2025-05"))
    assert count == 400
    assert month.calls == month.free_calls == 400


def test_unknown_service_is_refused_before_work(billing: Billing, account_id: int) -> None:
    import pytest

    from facecloud.errors import ApiError

    with pytest.raises(ApiError) as error:
        billing.ensure_can_bill(account_id, "teleport")
    assert error.value.code == "InternalError"
