"""The wallet: balance, freeze and arrears of an account, changed only together with an append-only wallet entry.

Arrears rule: after a change, `frozen` = the part of the balance that can hold the freeze target (120% of the
last bill), and the account is in arrears while the balance cannot cover that target (a negative balance included)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, insert, select, update

from facecloud.billing.models import Alert, Wallet, WalletEntry
from facecloud.billing.money import ZERO, cny, fmt
from facecloud.billing.periods import utcnow


@dataclass
class WalletState:
    account_id: int
    balance: Decimal
    frozen: Decimal
    freeze_target: Decimal
    in_arrears: bool

    @property
    def available(self) -> Decimal:
        return self.balance - self.frozen

    def as_json(self) -> dict[str, object]:
        return {
            "account_id": self.account_id,
            "balance": fmt(self.balance),
            "frozen": fmt(self.frozen),
            "available": fmt(self.available),
            "freeze_target": fmt(self.freeze_target),
            "in_arrears": self.in_arrears,
        }


def load(conn: Connection, account_id: int) -> WalletState:
    t = Wallet.__table__
    row = conn.execute(
        select(t.c.balance, t.c.frozen, t.c.freeze_target, t.c.in_arrears).where(t.c.account_id == account_id)
    ).first()
    if row is None:
        return WalletState(account_id, ZERO, ZERO, ZERO, False)
    return WalletState(account_id, row.balance, row.frozen, row.freeze_target, bool(row.in_arrears))


def change(
    conn: Connection,
    state: WalletState,
    kind: str,
    amount: Decimal,
    reference: str = "",
    freeze_target: Decimal | None = None,
    at: datetime | None = None,
) -> WalletState:
    """Apply `amount` to the balance (and a new freeze target), re-derive freeze and arrears, append the entry."""
    at = at or utcnow()
    amount = cny(amount)
    balance = state.balance + amount
    target = state.freeze_target if freeze_target is None else cny(freeze_target)
    frozen = min(max(balance, ZERO), target)
    new = WalletState(state.account_id, balance, frozen, target, balance < target)
    conn.execute(
        insert(WalletEntry.__table__).values(
            account_id=state.account_id,
            kind=kind,
            amount=amount,
            frozen_change=frozen - state.frozen,
            balance_after=balance,
            reference=reference,
            created_at=at,
        )
    )
    _save(conn, new, at)
    if new.in_arrears and not state.in_arrears:
        conn.execute(
            insert(Alert.__table__).values(
                account_id=state.account_id,
                kind="arrears",
                pack_id=None,
                service="",
                message=f"The account is in arrears (balance {fmt(balance)} CNY, needs {fmt(target)} CNY): "
                f"billable calls are refused until a top-up.",
                created_at=at,
                delivered_at=None,
                attempts=0,
                last_error="",
            )
        )
    return new


def _save(conn: Connection, state: WalletState, at: datetime) -> None:
    t = Wallet.__table__
    values = {
        "balance": state.balance,
        "frozen": state.frozen,
        "freeze_target": state.freeze_target,
        "in_arrears": state.in_arrears,
        "updated_at": at,
    }
    done = conn.execute(update(t).where(t.c.account_id == state.account_id).values(values))
    if done.rowcount == 0:
        conn.execute(insert(t).values(account_id=state.account_id, **values))
