"""Monthly settlement: one bill per account and month (idempotent), then release the old freeze, deduct the
bill and freeze 120% of it as the estimate of the next month."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from facecloud.billing import wallet
from facecloud.billing.catalog import Catalog
from facecloud.billing.models import Bill, BillLine, UsageMonth, Wallet
from facecloud.billing.money import ZERO, cny
from facecloud.billing.pricing import MonthCharge, month_charge
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
    bill_id = conn.execute(
        insert(Bill.__table__).values(
            account_id=account_id,
            month=month,
            issued_at=at,
            total=total,
            freeze_released=released,
            freeze_target=state.freeze_target,
            balance_after=state.balance,
            in_arrears=state.in_arrears,
        )
    ).inserted_primary_key[0]
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
    return int(bill_id), True
