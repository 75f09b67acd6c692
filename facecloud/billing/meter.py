"""The meter: records each billable call once, durably, with group commit.

Callers hand a call to one writer thread and wait. The writer takes every call pending at that moment, and in ONE
transaction drops RequestIds already in the ledger, decides what pays for each call (free pack -> purchased packs,
expiring first then bought first -> postpaid), appends the ledger entries, updates the counters and pack balances,
queues pack alerts, and commits; then it wakes each caller. One fsync serves the whole batch."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update

from facecloud.billing.catalog import Catalog
from facecloud.billing.models import Alert, Pack, UsageDay, UsageEntry, UsageMonth
from facecloud.billing.periods import day_of, month_of, utcnow
from facecloud.billing.store import add_to_counters, write_transaction
from facecloud.db import Database

log = logging.getLogger("facecloud.billing")

MAX_BATCH = 2048
_IN_CHUNK = 500  # bound on the parameters of one IN (...) list


@dataclass(frozen=True)
class Call:
    account_id: int
    service: str
    action: str
    request_id: str
    at: datetime


@dataclass
class _Waiter:
    call: Call
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


@dataclass
class _PackState:
    id: int
    size: int
    remaining: int
    purchased_at: datetime
    expires_at: datetime
    low_alerted: bool
    exhausted_alerted: bool
    touched: bool = False

    def covers(self, at: datetime) -> bool:
        return self.remaining > 0 and self.purchased_at <= at < self.expires_at


class Allocator:
    """Decides, call by call, what pays for it: 'free', 'pack' (with the pack's id) or 'postpaid'.

    Reads the month's free-pack use and the account's packs once per batch, inside the writing transaction."""

    def __init__(self, conn: Connection, catalog: Catalog, zone: ZoneInfo) -> None:
        self._conn = conn
        self._catalog = catalog
        self._zone = zone
        self._free_used: dict[tuple[int, str, str], int] = {}
        self._packs: dict[tuple[int, str], list[_PackState]] = {}
        self.alerts: list[dict[str, object]] = []

    def assign(self, call: Call, month: str) -> tuple[str, int | None]:
        key = (call.account_id, call.service, month)
        if key not in self._free_used:
            self._free_used[key] = self._load_free_used(*key)
        if self._free_used[key] < self._catalog.free_calls_per_month:
            self._free_used[key] += 1
            return "free", None
        for pack in self._packs_of(call.account_id, call.service):
            if pack.covers(call.at):
                self._consume(pack, call)
                return "pack", pack.id
        return "postpaid", None

    def touched_packs(self) -> list[_PackState]:
        return [p for packs in self._packs.values() for p in packs if p.touched]

    def _consume(self, pack: _PackState, call: Call) -> None:
        pack.remaining -= 1
        pack.touched = True
        ratio = self._catalog.pack_low_alert_ratio
        if not pack.low_alerted and Decimal(pack.remaining) < pack.size * ratio:
            pack.low_alerted = True
            self._alert(call, pack, "pack_low",
                        f"Pack #{pack.id} ({call.service}, {pack.size:,} calls) has {pack.remaining:,} calls left, "
                        f"below {ratio:.0%}.")
        if not pack.exhausted_alerted and pack.remaining == 0:
            pack.exhausted_alerted = True
            self._alert(call, pack, "pack_exhausted",
                        f"Pack #{pack.id} ({call.service}, {pack.size:,} calls) is exhausted; further calls use "
                        f"other packs or postpaid.")

    def _alert(self, call: Call, pack: _PackState, kind: str, message: str) -> None:
        self.alerts.append({
            "account_id": call.account_id, "kind": kind, "pack_id": pack.id, "service": call.service,
            "message": message, "created_at": utcnow(), "delivered_at": None, "attempts": 0, "last_error": "",
        })

    def _load_free_used(self, account_id: int, service: str, month: str) -> int:
        t = UsageMonth.__table__
        used = self._conn.execute(select(t.c.free_calls).where(
            t.c.account_id == account_id, t.c.service == service, t.c.month == month)).scalar()
        return int(used or 0)

    def _packs_of(self, account_id: int, service: str) -> list[_PackState]:
        key = (account_id, service)
        if key not in self._packs:
            t = Pack.__table__
            rows = self._conn.execute(
                select(t.c.id, t.c.size, t.c.remaining, t.c.purchased_at, t.c.expires_at, t.c.low_alerted,
                       t.c.exhausted_alerted)
                .where(t.c.account_id == account_id, t.c.service == service, t.c.remaining > 0)
                .order_by(t.c.expires_at, t.c.purchased_at, t.c.id)
            )
            self._packs[key] = [_PackState(*row) for row in rows]
        return self._packs[key]


def write_calls(conn: Connection, calls: list[Call], catalog: Catalog, zone: ZoneInfo) -> list[dict[str, object]]:
    """Append the calls not yet in the ledger (idempotent per RequestId); return the alerts it queued."""
    unique = {c.request_id: c for c in reversed(calls)}  # first occurrence wins
    entries = UsageEntry.__table__
    ids = list(unique)
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start:start + _IN_CHUNK]
        for (seen,) in conn.execute(select(entries.c.request_id).where(entries.c.request_id.in_(chunk))):
            unique.pop(seen, None)
    if not unique:
        return []
    allocator = Allocator(conn, catalog, zone)
    rows = []
    monthly: dict[tuple[int, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    daily: dict[tuple[int, str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for call in sorted(unique.values(), key=lambda c: c.at):
        month, day = month_of(call.at, zone), day_of(call.at, zone)
        source, pack_id = allocator.assign(call, month)
        rows.append({"request_id": call.request_id, "account_id": call.account_id, "service": call.service,
                     "action": call.action, "at": call.at, "month": month, "day": day, "source": source,
                     "pack_id": pack_id})
        for counters in (monthly[(call.account_id, call.service, month)],
                         daily[(call.account_id, call.service, day, month)]):
            counters["calls"] += 1
            counters[f"{source}_calls"] += 1
    conn.execute(insert(entries), rows)
    for (account_id, service, month), deltas in monthly.items():
        add_to_counters(conn, UsageMonth.__table__, {"account_id": account_id, "service": service, "month": month},
                        _all_counters(deltas))
    for (account_id, service, day, month), deltas in daily.items():
        add_to_counters(conn, UsageDay.__table__,
                        {"account_id": account_id, "service": service, "day": day, "month": month},
                        _all_counters(deltas))
    packs = Pack.__table__
    for pack in allocator.touched_packs():
        conn.execute(update(packs).where(packs.c.id == pack.id).values(
            remaining=pack.remaining, low_alerted=pack.low_alerted, exhausted_alerted=pack.exhausted_alerted))
    if allocator.alerts:
        conn.execute(insert(Alert.__table__), allocator.alerts)
    return allocator.alerts


def _all_counters(deltas: dict[str, int]) -> dict[str, int]:
    return {name: deltas.get(name, 0) for name in ("calls", "free_calls", "pack_calls", "postpaid_calls")}


class Meter:
    """Group commit: one writer thread, one transaction (and one fsync) per batch of pending calls."""

    def __init__(self, db: Database, catalog: Catalog, zone: ZoneInfo,
                 on_alerts: Callable[[], None] | None = None, max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._catalog = catalog
        self._zone = zone
        self._on_alerts = on_alerts
        self._max_batch = max_batch
        self._pending: list[_Waiter] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def record(self, call: Call) -> None:
        """Returns once the call is committed in the ledger (or was already there); raises if it could not be."""
        waiter = _Waiter(call)
        with self._wake:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="billing-meter", daemon=True)
                self._thread.start()
            self._pending.append(waiter)
            self._wake.notify()
        waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                batch = self._pending[:self._max_batch]
                del self._pending[:self._max_batch]
            self._commit(batch)

    def _commit(self, batch: list[_Waiter]) -> None:
        try:
            calls = [w.call for w in batch]
            with write_transaction(self._db, {c.account_id for c in calls}) as conn:
                alerts = write_calls(conn, calls, self._catalog, self._zone)
        except Exception as error:  # one bad call must not fail the others: retry them one by one
            if len(batch) > 1:
                for waiter in batch:
                    self._commit([waiter])
                return
            log.exception("billing: could not record call %s", batch[0].call.request_id)
            batch[0].error = error
            batch[0].done.set()
            return
        for waiter in batch:
            waiter.done.set()
        if alerts and self._on_alerts is not None:
            self._on_alerts()
