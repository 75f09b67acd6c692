"""Billing: the facade the gateway, the console and the CLI use (no HTTP here)."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from facecloud.billing import packs, settlement, usage, wallet
from facecloud.billing.alerts import WebhookSender
from facecloud.billing.catalog import Catalog, default_catalog
from facecloud.billing.meter import Call, Meter, write_calls
from facecloud.billing.models import Wallet
from facecloud.billing.money import cny
from facecloud.billing.periods import aware, month_of, parse_month, previous_month, utcnow
from facecloud.billing.pricing import plan, quote
from facecloud.billing.store import lock_accounts, write_transaction
from facecloud.config import Settings
from facecloud.db import Database
from facecloud.errors import ApiError

log = logging.getLogger("facecloud.billing")

ARREARS_CACHE_S = 0.5


class Billing:
    def __init__(self, db: Database, settings: Settings, catalog: Catalog | None = None) -> None:
        self.db = db
        self.settings = settings
        self.catalog = catalog or default_catalog()
        self.zone = ZoneInfo(settings.billing_timezone)
        self.webhook = WebhookSender(db, settings.webhook_url)
        self.meter = Meter(db, self.catalog, self.zone, on_alerts=self.webhook.notify)
        self._arrears_cache: dict[int, tuple[float, bool]] = {}

    # --- the gateway's two calls ---
    def ensure_can_bill(self, account_id: int, service: str) -> None:
        """Refuse a billable call before any work: unknown service (a registry bug) or an account in arrears."""
        self._check_service(service)
        if self._in_arrears(account_id):
            raise ApiError("ResourceUnavailable.InArrears")

    def record_call(
        self, account_id: int, service: str, action: str, request_id: str, at: datetime | None = None
    ) -> None:
        """Meter one billable call; committed when this returns; a RequestId already recorded is ignored."""
        self._check_service(service)
        self.meter.record(Call(account_id, service, action, request_id, aware(at) if at else utcnow()))

    def record_call_in(
        self, conn: Connection, account_id: int, service: str, action: str, request_id: str, at: datetime | None = None
    ) -> bool:
        """Meter one billable call inside the caller's write transaction on this database (`conn`): the ledger row
        commits or rolls back with it. Returns whether it queued alerts (call alerts_queued() after the commit).

        SQLite: the caller's transaction already holds the write lock; PostgreSQL: takes the account's billing
        lock, held to the commit. A RequestId already recorded is ignored."""
        self._check_service(service)
        lock_accounts(conn, [account_id])
        call = Call(account_id, service, action, request_id, aware(at) if at else utcnow())
        return bool(write_calls(conn, [call], self.catalog, self.zone))

    def alerts_queued(self) -> None:
        """Wake the alert sender (after a commit that queued alerts)."""
        self.webhook.notify()

    # --- money: top-up, packs, settlement ---
    def top_up(self, account_id: int, amount: Decimal | str, reference: str = "") -> dict[str, object]:
        """Add money to the balance; lifts arrears once the balance covers the debt and the freeze."""
        value = _amount(amount)
        with write_transaction(self.db, [account_id]) as conn:
            state = wallet.change(conn, wallet.load(conn, account_id), "topup", value, reference=reference)
        self._arrears_cache.pop(account_id, None)
        return state.as_json()

    def buy_pack(self, account_id: int, service: str, size: int, at: datetime | None = None) -> dict[str, object]:
        """Buy one prepaid pack of `size` calls from the available balance (no refund)."""
        try:
            self.catalog.service(service).pack_price(size)
        except ValueError as error:
            raise ApiError(
                "InvalidParameterValue", str(error), f"服务 {service} 没有 {size} 次的资源包规格。"
            ) from None
        at = aware(at) if at else utcnow()
        with write_transaction(self.db, [account_id]) as conn:
            pack_id = packs.buy(conn, self.catalog, self.zone, account_id, service, size, at)
            listed = usage.packs(conn, account_id, at)
        return next(p for p in listed if p["id"] == pack_id)

    def settle(self, account_id: int, month: str, at: datetime | None = None) -> dict[str, object]:
        """Issue the bill of a finished month (idempotent: a second run returns the same bill)."""
        at = aware(at) if at else utcnow()
        self._check_month_over(month, at)
        with write_transaction(self.db, [account_id]) as conn:
            _, issued = settlement.settle(conn, self.catalog, account_id, month, at)
            bill = usage.bills(conn, account_id, month)[0]
        self._arrears_cache.pop(account_id, None)
        self.webhook.notify()
        return {**bill, "newly_issued": issued}

    def settle_due(self, now: datetime | None = None) -> list[dict[str, object]]:
        """Settle every finished month not settled yet, for every account with something to settle (usage, or a
        wallet: money, a freeze to release or arrears), oldest month first, so a restart after downtime catches
        up. An account that fails is logged and left for the next run; the others are settled.

        Safe to call on start and periodically (e.g. hourly): it issues each bill once."""
        now = aware(now) if now else utcnow()
        last = previous_month(month_of(now, self.zone))
        with self.db.engine.connect() as conn:
            due = settlement.due_months(conn, self.zone, last)
        issued = []
        for account_id, months in due.items():
            try:
                for month in months:
                    bill = self.settle(account_id, month, now)
                    if bill["newly_issued"]:
                        issued.append(bill)
            except Exception:  # noqa: BLE001 - one account's failure must not stop the others' bills
                log.exception("billing: settling account %s failed; retrying on the next run", account_id)
        if issued:
            log.info("billing: settled %d bills", len(issued))
        return issued

    def settle_month(self, month: str, at: datetime | None = None) -> list[dict[str, object]]:
        """Settle `month` for every account with something to settle; returns the bills newly issued."""
        self._check_month_over(month, aware(at) if at else utcnow())
        with self.db.engine.connect() as conn:
            unbilled = [
                i for i in settlement.candidates(conn, month) if settlement.existing_bill(conn, i, month) is None
            ]
        issued = []
        for account_id in unbilled:
            bill = self.settle(account_id, month, at)
            if bill["newly_issued"]:
                issued.append(bill)
        if issued:
            log.info("billing: settled %s for %d accounts", month, len(issued))
        return issued

    # --- pricing ---
    def quote(self, service: str, calls: int, pack_sizes: list[int]) -> dict[str, object]:
        return quote(self.catalog, service, calls, pack_sizes)

    def plan(self, service: str, calls_per_year: int) -> dict[str, object]:
        return plan(self.catalog, service, calls_per_year)

    # --- the console's read API ---
    def wallet(self, account_id: int) -> dict[str, object]:
        with self.db.engine.connect() as conn:
            return wallet.load(conn, account_id).as_json()

    def usage_daily(
        self, account_id: int, month: str | None = None, service: str | None = None
    ) -> list[dict[str, object]]:
        """Per day and service: calls and their free / pack / postpaid split (days in the billing time zone)."""
        with self.db.engine.connect() as conn:
            return usage.daily(conn, account_id, month or self.current_month(), service)

    def usage_monthly(
        self, account_id: int, first: str | None = None, last: str | None = None, service: str | None = None
    ) -> list[dict[str, object]]:
        """Per month and service: the split, the tier reached so far and the postpaid amount it implies."""
        months = (first or "0000-00", last or "9999-99") if first or last else None
        with self.db.engine.connect() as conn:
            return usage.monthly(conn, self.catalog, account_id, months, service)

    def usage_summary(self, account_id: int, month: str | None = None) -> dict[str, object]:
        month = month or self.current_month()
        with self.db.engine.connect() as conn:
            services = usage.monthly(conn, self.catalog, account_id, (month, month))
            return {
                "month": month,
                "totals": usage.totals(conn, account_id, month),
                "services": services,
                "postpaid_amount": usage.amount_so_far(services),
                "wallet": wallet.load(conn, account_id).as_json(),
            }

    def packs(self, account_id: int, now: datetime | None = None) -> list[dict[str, object]]:
        with self.db.engine.connect() as conn:
            return usage.packs(conn, account_id, aware(now) if now else utcnow())

    def bills(self, account_id: int, month: str | None = None) -> list[dict[str, object]]:
        with self.db.engine.connect() as conn:
            return usage.bills(conn, account_id, month)

    def alerts(self, account_id: int | None = None, limit: int = 100) -> list[dict[str, object]]:
        with self.db.engine.connect() as conn:
            return usage.alerts(conn, account_id, limit)

    def current_month(self, now: datetime | None = None) -> str:
        return month_of(aware(now) if now else utcnow(), self.zone)

    def previous_month(self, now: datetime | None = None) -> str:
        return previous_month(self.current_month(now))

    def _check_month_over(self, month: str, at: datetime) -> None:
        try:
            parse_month(month)
        except ValueError as error:
            raise ApiError("InvalidParameterValue", str(error), f"不是合法的月份（YYYY-MM）：{month!r}") from None
        if month >= month_of(at, self.zone):
            raise ApiError(
                "FailedOperation",
                f"month {month} has not ended yet in {self.zone.key}",
                f"{month} 月在 {self.zone.key} 时区尚未结束",
            )

    def _in_arrears(self, account_id: int) -> bool:
        """The arrears flag, cached for ARREARS_CACHE_S: it changes only at settlement and top-up (this
        process forgets its cache then; another process's change is seen within ARREARS_CACHE_S)."""
        now = time.monotonic()
        cached = self._arrears_cache.get(account_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        wallets = Wallet.__table__
        with self.db.engine.connect() as conn:
            in_arrears = bool(
                conn.execute(select(wallets.c.in_arrears).where(wallets.c.account_id == account_id)).scalar()
            )
        if len(self._arrears_cache) > 100_000:
            self._arrears_cache.clear()
        self._arrears_cache[account_id] = (now + ARREARS_CACHE_S, in_arrears)
        return in_arrears

    def _check_service(self, service: str) -> None:
        if service not in self.catalog.service_ids:
            raise ApiError("InternalError", f"billing: unknown service {service!r}", f"计费：未知服务 {service!r}")


def _amount(amount: Decimal | str) -> Decimal:
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ApiError("InvalidParameterValue", f"not an amount: {amount!r}", f"不是合法金额：{amount!r}") from None
    if not value.is_finite() or value <= 0 or value != cny(value):
        raise ApiError(
            "InvalidParameterValue",
            "the amount must be positive CNY with at most two decimals",
            "金额必须为正数（人民币元），最多两位小数",
        )
    return value
