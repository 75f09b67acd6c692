"""Monthly settlement: one bill per account and month (idempotent), then release the old freeze, deduct the
bill and freeze 120% of it as the estimate of the next month."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, insert, select

from facecloud.billing import wallet
from facecloud.billing.catalog import Catalog
from facecloud.billing.models import Bill, BillLine, UsageMonth, Wallet, WalletEntry
from facecloud.billing.money import ZERO, cny
from facecloud.billing.periods import month_of, next_month
from facecloud.billing.pricing import MonthCharge, month_charge
from facecloud.db import insert_row
from facecloud.errors import ApiError


def bill_lines(conn: Connection, catalog: Catalog, account_id: int, month: str) -> list[MonthCharge]:
    t = UsageMonth.__table__
    rows = conn.execute(
        select(t.c.service, t.c.free_calls, t.c.pack_calls, t.c.postpaid_calls)
        .where(t.c.account_id == account_id, t.c.month == month, t.c.calls > 0)
        .order_by(t.c.service)
    )
    return [month_charge(catalog, row.service, row.free_calls, row.pack_calls, row.postpaid_calls) for row in rows]


def candidates(conn: Connection, month: str) -> list[int]:
    """Accounts with something to settle for `month`: usage in it, or a wallet."""
    usage, wallets = UsageMonth.__table__, Wallet.__table__
    used = select(usage.c.account_id).where(usage.c.month == month)
    return sorted(set(conn.execute(used).scalars()) | set(conn.execute(select(wallets.c.account_id)).scalars()))


def due_months(conn: Connection, zone: ZoneInfo, last: str) -> dict[int, list[str]]:
    """Per account, every month up to `last` not settled yet, oldest first: the months after its latest bill, or,
    for an account never billed, from its first usage or wallet entry on (a catch-up after downtime)."""
    bills, usage, entries = Bill.__table__, UsageMonth.__table__, WalletEntry.__table__
    billed = dict(conn.execute(select(bills.c.account_id, func.max(bills.c.month)).group_by(bills.c.account_id)).all())
    first = dict(conn.execute(select(usage.c.account_id, func.min(usage.c.month)).group_by(usage.c.account_id)).all())
    for account_id, at in conn.execute(
        select(entries.c.account_id, func.min(entries.c.created_at)).group_by(entries.c.account_id)
    ):
        month = month_of(at if at.tzinfo else at.replace(tzinfo=ZoneInfo("UTC")), zone)
        first[account_id] = min(first.get(account_id, month), month)
    due: dict[int, list[str]] = {}
    for account_id in sorted(first):
        month = next_month(billed[account_id]) if account_id in billed else first[account_id]
        months = []
        while month <= last:
            months.append(month)
            month = next_month(month)
        if months:
            due[account_id] = months
    return due


def existing_bill(conn: Connection, account_id: int, month: str) -> int | None:
    t = Bill.__table__
    return conn.execute(select(t.c.id).where(t.c.account_id == account_id, t.c.month == month)).scalar()


def settle(conn: Connection, catalog: Catalog, account_id: int, month: str, at: datetime) -> tuple[int, bool]:
    """Issue the bill of `month` (inside the caller's locked transaction). Returns (bill id, newly issued)."""
    bill_id = existing_bill(conn, account_id, month)
    if bill_id is not None:
        return bill_id, False
    bills = Bill.__table__
    later = conn.execute(
        select(bills.c.month).where(bills.c.account_id == account_id, bills.c.month > month).limit(1)
    ).scalar()
    if later is not None:  # its freeze would be released by an older bill
        raise ApiError(
            "FailedOperation",
            f"month {later} is already settled; {month} can no longer be",
            f"{later} 月已结算，{month} 月无法再结算",
        )
    lines = bill_lines(conn, catalog, account_id, month)
    total = sum((line.amount for line in lines), ZERO)
    state = wallet.load(conn, account_id)
    released = state.frozen
    state = wallet.change(conn, state, "freeze_release", ZERO, reference=f"bill:{month}", freeze_target=ZERO, at=at)
    state = wallet.change(conn, state, "bill", -total, reference=f"bill:{month}", at=at)
    state = wallet.change(
        conn,
        state,
        "freeze",
        ZERO,
        reference=f"bill:{month}",
        freeze_target=cny(total * catalog.freeze_ratio),
        at=at,
    )
    bill_id = insert_row(
        conn,
        Bill.__table__,
        account_id=account_id,
        month=month,
        issued_at=at,
        total=total,
        freeze_released=released,
        freeze_target=state.freeze_target,
        balance_after=state.balance,
        in_arrears=state.in_arrears,
    )
    if lines:
        conn.execute(
            insert(BillLine.__table__),
            [
                {
                    "bill_id": bill_id,
                    "service": line.service,
                    "calls": line.calls,
                    "free_calls": line.free_calls,
                    "pack_calls": line.pack_calls,
                    "postpaid_calls": line.postpaid_calls,
                    "tier": line.tier,
                    "unit_price": line.unit_price,
                    "amount": line.amount,
                }
                for line in lines
            ],
        )
    return bill_id, True
