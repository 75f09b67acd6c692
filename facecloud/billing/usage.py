"""Read models for the console and the CLI: usage by service, day and month; packs; bills; the alert outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, func, select

from facecloud.billing.alerts import alert_json
from facecloud.billing.catalog import Catalog
from facecloud.billing.models import Alert, Bill, BillLine, Pack, UsageDay, UsageMonth
from facecloud.billing.money import ZERO, fmt
from facecloud.billing.pricing import month_charge

COUNTERS = ("calls", "free_calls", "pack_calls", "postpaid_calls")


def daily(conn: Connection, account_id: int, month: str, service: str | None = None) -> list[dict[str, object]]:
    t = UsageDay.__table__
    query = select(t).where(t.c.account_id == account_id, t.c.month == month)
    if service:
        query = query.where(t.c.service == service)
    return [
        {"day": r.day, "service": r.service, **{c: getattr(r, c) for c in COUNTERS}}
        for r in conn.execute(query.order_by(t.c.day, t.c.service))
    ]


def monthly(
    conn: Connection,
    catalog: Catalog,
    account_id: int,
    months: tuple[str, str] | None = None,
    service: str | None = None,
) -> list[dict[str, object]]:
    """One row per month and service, with the tier reached so far and the postpaid amount it implies."""
    t = UsageMonth.__table__
    query = select(t).where(t.c.account_id == account_id)
    if months:
        query = query.where(t.c.month >= months[0], t.c.month <= months[1])
    if service:
        query = query.where(t.c.service == service)
    rows = []
    for r in conn.execute(query.order_by(t.c.month, t.c.service)):
        charge = month_charge(catalog, r.service, r.free_calls, r.pack_calls, r.postpaid_calls)
        rows.append(
            {
                "month": r.month,
                "service": r.service,
                **{c: getattr(r, c) for c in COUNTERS},
                "tier": charge.tier,
                "unit_price": str(charge.unit_price),
                "postpaid_amount": fmt(charge.amount),
            }
        )
    return rows


def packs(conn: Connection, account_id: int, now: datetime) -> list[dict[str, object]]:
    p, a = Pack.__table__, Alert.__table__
    alerts: dict[int, list[str]] = {}
    for pack_id, kind in conn.execute(
        select(a.c.pack_id, a.c.kind).where(a.c.account_id == account_id, a.c.pack_id.is_not(None))
    ):
        alerts.setdefault(pack_id, []).append(kind)
    result = []
    for r in conn.execute(select(p).where(p.c.account_id == account_id).order_by(p.c.expires_at, p.c.id)):
        status = "expired" if r.expires_at <= now else "exhausted" if r.remaining == 0 else "active"
        result.append(
            {
                "id": r.id,
                "service": r.service,
                "size": r.size,
                "price": fmt(r.price),
                "remaining": r.remaining,
                "used": r.size - r.remaining,
                "progress": round((r.size - r.remaining) / r.size, 4),
                "purchased_at": r.purchased_at.isoformat(),
                "expires_at": r.expires_at.isoformat(),
                "status": status,
                "alerts": sorted(alerts.get(r.id, [])),
            }
        )
    return result


def bills(conn: Connection, account_id: int, month: str | None = None) -> list[dict[str, object]]:
    b, line = Bill.__table__, BillLine.__table__
    query = select(b).where(b.c.account_id == account_id)
    if month:
        query = query.where(b.c.month == month)
    result = []
    for r in conn.execute(query.order_by(b.c.month)):
        lines = [
            {
                "service": x.service,
                "calls": x.calls,
                "free_calls": x.free_calls,
                "pack_calls": x.pack_calls,
                "postpaid_calls": x.postpaid_calls,
                "tier": x.tier,
                "unit_price": str(x.unit_price),
                "amount": fmt(x.amount),
            }
            for x in conn.execute(select(line).where(line.c.bill_id == r.id).order_by(line.c.service))
        ]
        result.append(
            {
                "id": r.id,
                "account_id": r.account_id,
                "month": r.month,
                "issued_at": r.issued_at.isoformat(),
                "total": fmt(r.total),
                "freeze_released": fmt(r.freeze_released),
                "freeze": fmt(r.freeze_target),
                "balance_after": fmt(r.balance_after),
                "in_arrears": bool(r.in_arrears),
                "lines": lines,
            }
        )
    return result


def alerts(conn: Connection, account_id: int | None = None, limit: int = 100) -> list[dict[str, object]]:
    t = Alert.__table__
    query = select(t).order_by(t.c.id.desc()).limit(limit)
    if account_id is not None:
        query = query.where(t.c.account_id == account_id)
    return [alert_json(r) for r in conn.execute(query)]


def totals(conn: Connection, account_id: int, month: str) -> dict[str, int]:
    t = UsageMonth.__table__
    row = conn.execute(
        select(*(func.coalesce(func.sum(t.c[c]), 0) for c in COUNTERS)).where(
            t.c.account_id == account_id, t.c.month == month
        )
    ).one()
    return dict(zip(COUNTERS, (int(v) for v in row), strict=True))


def amount_so_far(rows: list[dict[str, object]]) -> str:
    return fmt(sum((Decimal(str(r["postpaid_amount"])) for r in rows), ZERO))
