"""Billing tables. The usage ledger and the wallet ledger are append-only; counters, pack balances and the
wallet's balance are kept consistent with them in the same transaction that appends."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, MappedColumn, mapped_column

from facecloud.billing.money import DecimalText, Money
from facecloud.db import Base, UtcDateTime, account_ref, serial_key


def service_name(**options: bool | str) -> MappedColumn[str]:
    """A billed service of the price list (detect, search, ...)."""
    return mapped_column(String(32), **options)


class CallSplit:
    """Calls of one service and how they were covered: free quota, prepaid packs, postpaid."""

    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    free_calls: Mapped[int] = mapped_column(BigInteger, default=0)
    pack_calls: Mapped[int] = mapped_column(BigInteger, default=0)
    postpaid_calls: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageEntry(Base):
    """One billable call (the meter's ledger entry), keyed by RequestId; `source` says what paid for it."""

    __tablename__ = "billing_usage_entries"

    id: Mapped[int] = serial_key()
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = account_ref()
    service: Mapped[str] = service_name()
    action: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM in the billing time zone
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the billing time zone
    source: Mapped[str] = mapped_column(String(8))  # free | pack | postpaid
    pack_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (Index("ix_billing_usage_entries_account_month", "account_id", "month"),)


class UsageMonth(CallSplit, Base):
    """Counters of one account, service and month (sums of the ledger)."""

    __tablename__ = "billing_usage_monthly"

    account_id: Mapped[int] = account_ref(primary_key=True)
    service: Mapped[str] = service_name(primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)


class UsageDay(CallSplit, Base):
    """Counters of one account, service and day (sums of the ledger)."""

    __tablename__ = "billing_usage_daily"

    account_id: Mapped[int] = account_ref(primary_key=True)
    service: Mapped[str] = service_name(primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    month: Mapped[str] = mapped_column(String(7))

    __table_args__ = (Index("ix_billing_usage_daily_account_month", "account_id", "month"),)


class Pack(Base):
    """A purchased prepaid pack (a grant of calls of one service), valid one year from purchase."""

    __tablename__ = "billing_packs"

    id: Mapped[int] = serial_key(Integer())
    account_id: Mapped[int] = account_ref(index=True)
    service: Mapped[str] = service_name()
    size: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(Money)
    purchased_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    remaining: Mapped[int] = mapped_column(BigInteger)
    low_alerted: Mapped[bool] = mapped_column(Boolean, default=False)
    exhausted_alerted: Mapped[bool] = mapped_column(Boolean, default=False)


class Wallet(Base):
    """An account's money: balance (may go negative after a bill it could not cover) and the part of it frozen."""

    __tablename__ = "billing_wallets"

    account_id: Mapped[int] = account_ref(primary_key=True)
    balance: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    frozen: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    # 120% of the last bill: what settlement asked to freeze (frozen < freeze_target only while in arrears).
    freeze_target: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    in_arrears: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WalletEntry(Base):
    """Append-only wallet ledger: every change of balance or freeze, with what caused it."""

    __tablename__ = "billing_wallet_entries"

    id: Mapped[int] = serial_key()
    account_id: Mapped[int] = account_ref(index=True)
    kind: Mapped[str] = mapped_column(String(16))  # topup | pack_purchase | bill | freeze_release | freeze
    amount: Mapped[Decimal] = mapped_column(Money)  # change of the balance
    frozen_change: Mapped[Decimal] = mapped_column(Money)  # change of the frozen amount
    balance_after: Mapped[Decimal] = mapped_column(Money)
    reference: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Bill(Base):
    """The invoice of one account for one billing month (issued once: unique per account and month)."""

    __tablename__ = "billing_bills"

    id: Mapped[int] = serial_key(Integer())
    account_id: Mapped[int] = account_ref()
    month: Mapped[str] = mapped_column(String(7))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    total: Mapped[Decimal] = mapped_column(Money)
    freeze_released: Mapped[Decimal] = mapped_column(Money)
    freeze_target: Mapped[Decimal] = mapped_column(Money)
    balance_after: Mapped[Decimal] = mapped_column(Money)
    in_arrears: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (UniqueConstraint("account_id", "month", name="uq_billing_bills_account_month"),)


class BillLine(CallSplit, Base):
    """One service on a bill: its calls, how they were covered, the tier reached and the postpaid amount."""

    __tablename__ = "billing_bill_lines"

    id: Mapped[int] = serial_key(Integer())
    bill_id: Mapped[int] = mapped_column(ForeignKey("billing_bills.id"), index=True)
    service: Mapped[str] = service_name()
    tier: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(DecimalText)
    amount: Mapped[Decimal] = mapped_column(Money)


class Alert(Base):
    """The alert outbox: console messages, delivered to Settings.webhook_url by a background thread."""

    __tablename__ = "billing_alerts"

    id: Mapped[int] = serial_key(Integer())
    account_id: Mapped[int] = account_ref(index=True)
    kind: Mapped[str] = mapped_column(String(16))  # pack_low | pack_exhausted | arrears
    pack_id: Mapped[int | None] = mapped_column(ForeignKey("billing_packs.id"), nullable=True)
    service: Mapped[str] = service_name(default="")
    message: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(256), default="")

    # Each alert once per pack (NULL pack ids, i.e. account alerts, are not constrained).
    __table_args__ = (UniqueConstraint("pack_id", "kind", name="uq_billing_alerts_pack_kind"),)
