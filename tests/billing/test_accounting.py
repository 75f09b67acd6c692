"""Deduction order, packs (edges, expiry, alerts), month rollover in the billing zone, settlement, arrears."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from facecloud.billing import Billing
from facecloud.billing.models import UsageEntry, UsageMonth, WalletEntry
from facecloud.errors import ApiError
from facecloud.runtime import Runtime
from tests.billing.helpers import record_many, set_pack_remaining
from tests.conftest import test_settings as settings_in

MAY = datetime(2025, 5, 10, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
JUNE_2 = datetime(2025, 6, 2, 1, 0, tzinfo=UTC)


def _sources(billing: Billing, account_id: int) -> dict[str, int]:
    with billing.db.session() as s:
        rows = s.execute(
            select(UsageEntry.source, func.count())
            .where(UsageEntry.account_id == account_id)
            .group_by(UsageEntry.source)
        )
        return dict(rows.all())


def _last_source(billing: Billing, account_id: int) -> tuple[str, int | None]:
    with billing.db.session() as s:
        row = s.execute(
            select(UsageEntry.source, UsageEntry.pack_id)
            .where(UsageEntry.account_id == account_id)
            .order_by(UsageEntry.id.desc())
            .limit(1)
        ).one()
        return row.source, row.pack_id


def _fund(billing: Billing, account_id: int, amount: str = "100000") -> None:
    billing.top_up(account_id, amount)


def test_free_pack_edge_at_ten_thousand(billing: Billing, account_id: int) -> None:
    record_many(billing, account_id, "landmarks", 9_999, MAY)
    billing.record_call(account_id, "landmarks", "AnalyzeFace", "edge-10000", at=MAY)
    assert _last_source(billing, account_id) == ("free", None)
    billing.record_call(account_id, "landmarks", "AnalyzeFace", "edge-10001", at=MAY)
    assert _last_source(billing, account_id) == ("postpaid", None)
    assert _sources(billing, account_id) == {"free": 10_000, "postpaid": 1}


def test_free_pack_is_per_service(billing: Billing, account_id: int) -> None:
    record_many(billing, account_id, "detect", 10_000, MAY)
    billing.record_call(account_id, "compare", "CompareFace", "other-service", at=MAY)
    assert _last_source(billing, account_id) == ("free", None)


def test_order_free_then_packs_expiring_first_then_postpaid(billing: Billing, account_id: int) -> None:
    _fund(billing, account_id)
    first = billing.buy_pack(account_id, "compare", 1_000_000, at=MAY - timedelta(days=30))
    second = billing.buy_pack(account_id, "compare", 1_000_000, at=MAY - timedelta(days=1))
    assert first["expires_at"] < second["expires_at"]
    billing.record_call(account_id, "compare", "CompareFace", "r0", at=MAY)
    assert _last_source(billing, account_id) == ("free", None)
    record_many(billing, account_id, "compare", 9_999, MAY)
    billing.record_call(account_id, "compare", "CompareFace", "r1", at=MAY)
    assert _last_source(billing, account_id) == ("pack", first["id"])
    set_pack_remaining(billing, first["id"], 1)
    billing.record_call(account_id, "compare", "CompareFace", "r2", at=MAY)
    assert _last_source(billing, account_id) == ("pack", first["id"])
    billing.record_call(account_id, "compare", "CompareFace", "r3", at=MAY)
    assert _last_source(billing, account_id) == ("pack", second["id"])
    set_pack_remaining(billing, second["id"], 0)
    billing.record_call(account_id, "compare", "CompareFace", "r4", at=MAY)
    assert _last_source(billing, account_id) == ("postpaid", None)


def test_pack_alerts_at_fifteen_percent_and_at_zero_once_each(billing: Billing, account_id: int) -> None:
    _fund(billing, account_id)
    pack = billing.buy_pack(account_id, "liveness", 1_000_000, at=MAY)
    record_many(billing, account_id, "liveness", 10_000, MAY)
    set_pack_remaining(billing, pack["id"], 150_001)
    billing.record_call(account_id, "liveness", "DetectLiveFace", "a1", at=MAY)  # 150,000 left: exactly 15%
    assert billing.alerts(account_id) == []
    billing.record_call(account_id, "liveness", "DetectLiveFace", "a2", at=MAY)  # 149,999: below 15%
    assert [a["kind"] for a in billing.alerts(account_id)] == ["pack_low"]
    billing.record_call(account_id, "liveness", "DetectLiveFace", "a3", at=MAY)
    assert len(billing.alerts(account_id)) == 1
    set_pack_remaining(billing, pack["id"], 1)
    billing.record_call(account_id, "liveness", "DetectLiveFace", "a4", at=MAY)  # 0 left: exhausted
    assert [a["kind"] for a in billing.alerts(account_id)] == ["pack_exhausted", "pack_low"]
    billing.record_call(account_id, "liveness", "DetectLiveFace", "a5", at=MAY)
    assert _last_source(billing, account_id) == ("postpaid", None)
    listed = billing.packs(account_id, now=MAY)
    assert listed[0]["status"] == "exhausted" and listed[0]["alerts"] == ["pack_exhausted", "pack_low"]
    assert listed[0]["progress"] == 1.0


def test_pack_expires_on_the_exact_instant_one_year_later(billing: Billing, account_id: int) -> None:
    _fund(billing, account_id)
    bought = datetime(2025, 3, 15, 2, 0, tzinfo=UTC)  # 10:00 on 15 March in Shanghai
    pack = billing.buy_pack(account_id, "search", 1_000_000, at=bought)
    assert pack["expires_at"] == "2026-03-15T02:00:00+00:00"
    record_many(billing, account_id, "search", 10_000, datetime(2026, 3, 1, tzinfo=UTC))
    billing.record_call(account_id, "search", "SearchFaces", "before", at=datetime(2026, 3, 15, 1, 59, 59, tzinfo=UTC))
    assert _last_source(billing, account_id) == ("pack", pack["id"])
    billing.record_call(account_id, "search", "SearchFaces", "at", at=datetime(2026, 3, 15, 2, 0, tzinfo=UTC))
    assert _last_source(billing, account_id) == ("postpaid", None)
    assert billing.packs(account_id, now=datetime(2026, 3, 15, 2, 0, tzinfo=UTC))[0]["status"] == "expired"


def test_pack_purchase_needs_available_balance_and_is_not_refunded(billing: Billing, account_id: int) -> None:
    with pytest.raises(ApiError) as error:
        billing.buy_pack(account_id, "compare", 1_000_000, at=MAY)
    assert error.value.code == "FailedOperation.InsufficientBalance"
    billing.top_up(account_id, "3100.00")
    billing.buy_pack(account_id, "compare", 1_000_000, at=MAY)
    assert billing.wallet(account_id)["balance"] == "0.00"
    with pytest.raises(ApiError, match="postpaid only"):
        billing.buy_pack(account_id, "multi_search", 1_000_000, at=MAY)


def test_month_and_year_rollover_in_the_billing_time_zone(billing: Billing, account_id: int) -> None:
    last_second = datetime(2025, 12, 31, 15, 59, 59, tzinfo=UTC)  # 23:59:59 on 31 Dec in Shanghai
    record_many(billing, account_id, "verify", 10_000, last_second)
    billing.record_call(account_id, "verify", "VerifyFace", "dec", at=last_second)
    assert _last_source(billing, account_id) == ("postpaid", None)
    billing.record_call(account_id, "verify", "VerifyFace", "jan", at=last_second + timedelta(seconds=1))
    assert _last_source(billing, account_id) == ("free", None)  # a new month (and year): a new free pack
    months = {(r["month"], r["calls"]) for r in billing.usage_monthly(account_id)}
    assert months == {("2025-12", 10_001), ("2026-01", 1)}
    days = billing.usage_daily(account_id, "2026-01")
    assert [(d["day"], d["free_calls"]) for d in days] == [("2026-01-01", 1)]


def test_the_billing_time_zone_is_configurable(tmp_path: Path) -> None:
    runtime = Runtime(settings_in(tmp_path, billing_timezone="UTC"))
    try:
        account = runtime.accounts.find(str(runtime.accounts.create("utc").app_id)).id
        runtime.billing.record_call(account, "detect", "DetectFace", "x", at=datetime(2025, 12, 31, 20, tzinfo=UTC))
        assert runtime.billing.usage_monthly(account)[0]["month"] == "2025-12"  # 2026-01-01 04:00 in Shanghai
    finally:
        runtime.close()


def _seed_month(
    billing: Billing, account_id: int, service: str, month: str, free: int, pack: int, postpaid: int
) -> None:
    """Counters as metering leaves them (a month of millions of calls, without metering them one by one)."""
    with billing.db.session() as s:
        s.add(
            UsageMonth(
                account_id=account_id,
                service=service,
                month=month,
                calls=free + pack + postpaid,
                free_calls=free,
                pack_calls=pack,
                postpaid_calls=postpaid,
            )
        )


def test_settlement_bill_lines_at_the_tier_boundaries(billing: Billing, account_id: int) -> None:
    _seed_month(billing, account_id, "compare", "2025-05", 10_000, 0, 2_990_000)  # 3,000,000: tier 1
    _seed_month(billing, account_id, "detect", "2025-05", 10_000, 0, 2_990_001)  # 3,000,001: tier 2
    _seed_month(billing, account_id, "landmarks", "2025-05", 10_000, 0, 14_990_000)  # 15,000,000: tier 2
    _seed_month(billing, account_id, "liveness", "2025-05", 10_000, 0, 14_990_001)  # 15,000,001: tier 3
    _seed_month(billing, account_id, "search", "2025-05", 10_000, 50_000_000, 1_990_000)  # seed example two
    billing.top_up(account_id, "200000")
    bill = billing.settle(account_id, "2025-05", at=JUNE_2)
    lines = {line["service"]: (line["tier"], line["unit_price"], line["amount"]) for line in bill["lines"]}
    assert lines == {
        "compare": (1, "0.0032", "9568.00"),
        "detect": (2, "0.0004", "1196.00"),
        "landmarks": (2, "0.0018", "26982.00"),
        "liveness": (3, "0.0013", "19487.00"),
        "search": (1, "0.0032", "6368.00"),
    }
    assert bill["total"] == "63601.00"
    assert bill["freeze"] == "76321.20" and not bill["in_arrears"]
    assert billing.wallet(account_id) == {
        "account_id": account_id,
        "balance": "136399.00",
        "frozen": "76321.20",
        "available": "60077.80",
        "freeze_target": "76321.20",
        "in_arrears": False,
    }


def test_settlement_twice_issues_one_bill_and_releases_last_months_freeze(billing: Billing, account_id: int) -> None:
    billing.top_up(account_id, "1000")
    record_many(billing, account_id, "landmarks", 60_000, datetime(2025, 5, 3, tzinfo=UTC))  # 50,000 postpaid
    first = billing.settle(account_id, "2025-05", at=JUNE_2)
    again = billing.settle(account_id, "2025-05", at=JUNE_2 + timedelta(hours=1))
    assert again["id"] == first["id"] and first["newly_issued"] and not again["newly_issued"]
    assert first["total"] == "100.00" and first["freeze"] == "120.00"
    assert billing.settle_due(JUNE_2) == [] and len(billing.bills(account_id)) == 1
    with billing.db.session() as s:
        assert s.scalar(select(func.count()).select_from(WalletEntry)) == 4  # top-up, release, bill, freeze
    assert billing.wallet(account_id)["balance"] == "900.00"
    assert billing.wallet(account_id)["frozen"] == "120.00"
    # June: nothing used. Its bill releases May's freeze and freezes 0.
    july = billing.settle_due(datetime(2025, 6, 30, 16, 0, tzinfo=UTC))  # 1 July 00:00 in Shanghai
    assert [(b["month"], b["total"], b["freeze_released"], b["freeze"]) for b in july] == [
        ("2025-06", "0.00", "120.00", "0.00")
    ]
    assert billing.wallet(account_id)["frozen"] == "0.00"
    assert billing.settle_due(datetime(2025, 7, 2, tzinfo=UTC)) == []


def test_a_month_not_over_cannot_be_settled(billing: Billing, account_id: int) -> None:
    with pytest.raises(ApiError, match="not ended"):
        billing.settle(account_id, "2025-06", at=datetime(2025, 6, 30, 15, 59, tzinfo=UTC))


def test_arrears_block_billable_calls_until_a_top_up_and_keep_data(billing: Billing, account_id: int) -> None:
    record_many(billing, account_id, "compare", 20_000, datetime(2025, 5, 3, tzinfo=UTC))  # 10,000 postpaid = 32
    bill = billing.settle(account_id, "2025-05", at=JUNE_2)
    assert (bill["total"], bill["in_arrears"]) == ("32.00", True)
    with pytest.raises(ApiError) as error:
        billing.ensure_can_bill(account_id, "compare")
    assert error.value.code == "ResourceUnavailable.InArrears"
    assert [a["kind"] for a in billing.alerts(account_id)] == ["arrears"]
    with pytest.raises(ApiError):
        billing.buy_pack(account_id, "compare", 1_000_000)
    assert billing.top_up(account_id, "40.00")["in_arrears"] is True  # pays the debt, not the 38.40 freeze
    state = billing.top_up(account_id, "30.40")
    assert (state["balance"], state["frozen"], state["in_arrears"]) == ("38.40", "38.40", False)
    billing.ensure_can_bill(account_id, "compare")
    assert billing.usage_monthly(account_id)[0]["calls"] == 20_000  # nothing was deleted
    assert billing.bills(account_id)[0]["lines"][0]["postpaid_calls"] == 10_000


def test_usage_summary_splits_free_pack_and_postpaid(billing: Billing, account_id: int) -> None:
    _fund(billing, account_id)
    billing.buy_pack(account_id, "detect", 1_000_000, at=MAY)
    record_many(billing, account_id, "detect", 10_005, MAY)
    summary = billing.usage_summary(account_id, "2025-05")
    assert summary["totals"] == {"calls": 10_005, "free_calls": 10_000, "pack_calls": 5, "postpaid_calls": 0}
    assert summary["wallet"]["balance"] == str(Decimal("100000.00") - Decimal("450.00"))
