"""Settlement after downtime: every unsettled month is billed, oldest first, and one failing account does not stop
the others (they are retried on the next run)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facecloud.billing import Billing, settlement
from facecloud.runtime import Runtime
from tests.billing.helpers import record_many

AUGUST_3 = datetime(2025, 8, 3, 1, 0, tzinfo=UTC)


def _account(runtime: Runtime, name: str) -> int:
    return runtime.accounts.find(str(runtime.accounts.create(name).app_id)).id


def _months(billing: Billing, account_id: int) -> list[tuple[str, str]]:
    return sorted((b["month"], b["total"]) for b in billing.bills(account_id))


def test_settle_due_catches_up_every_month_and_isolates_a_failing_account(
    runtime: Runtime, billing: Billing, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthy, failing = _account(runtime, "healthy"), _account(runtime, "failing")
    record_many(billing, healthy, "landmarks", 10_100, datetime(2025, 4, 10, tzinfo=UTC))  # 100 postpaid in April
    record_many(billing, healthy, "landmarks", 10_200, datetime(2025, 6, 10, tzinfo=UTC))  # 200 postpaid in June
    record_many(billing, failing, "landmarks", 10_050, datetime(2025, 5, 10, tzinfo=UTC))
    real_settle = settlement.settle

    def broken_for_one(conn, catalog, account_id, month, at):  # type: ignore[no-untyped-def]
        if account_id == failing:
            raise RuntimeError("simulated failure")
        return real_settle(conn, catalog, account_id, month, at)

    monkeypatch.setattr(settlement, "settle", broken_for_one)
    # The server was down since April: on 3 August it settles April, May, June and July.
    issued = billing.settle_due(AUGUST_3)
    assert [(b["month"], b["total"]) for b in issued] == [
        ("2025-04", "0.20"),
        ("2025-05", "0.00"),
        ("2025-06", "0.40"),
        ("2025-07", "0.00"),
    ]
    assert _months(billing, failing) == []

    monkeypatch.setattr(settlement, "settle", real_settle)
    retried = billing.settle_due(AUGUST_3)
    assert [(b["month"], b["total"]) for b in retried] == [
        ("2025-05", "0.10"),
        ("2025-06", "0.00"),
        ("2025-07", "0.00"),
    ]
    assert billing.settle_due(AUGUST_3) == []  # each bill once
    assert [m for m, _ in _months(billing, healthy)] == ["2025-04", "2025-05", "2025-06", "2025-07"]
