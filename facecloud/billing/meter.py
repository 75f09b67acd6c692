"""The meter: records each billable call once, durably, with group commit.

Callers hand a call to one writer thread and wait. The writer takes every call pending at that moment, and in
ONE transaction drops RequestIds already in the ledger, decides what pays for each call (free pack ->
purchased packs, expiring first then bought first -> postpaid), appends the ledger entries, updates the
counters and pack balances, queues pack alerts, and commits; then it wakes each caller. One fsync serves the
whole batch."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from facecloud.billing.catalog import Catalog
from facecloud.billing.models import Alert, Pack, UsageDay, UsageEntry, UsageMonth
from facecloud.billing.periods import day_of, month_of, utcnow
from facecloud.billing.store import write_transaction
from facecloud.db import Database

log = logging.getLogger("facecloud.billing")

MAX_BATCH = 2048
_IN_CHUNK = 500  # bound on the parameters of one IN (...) list


# The meter's reads, built once: building a statement for each billable call cost more than running it.
_SEEN_REQUEST_IDS = select(UsageEntry.request_id).where(UsageEntry.request_id.in_(bindparam("ids", expanding=True)))
_FREE_USED = select(UsageMonth.account_id, UsageMonth.service, UsageMonth.month, UsageMonth.free_calls).where(
    UsageMonth.account_id.in_(bindparam("accounts", expanding=True)),
    UsageMonth.month.in_(bindparam("months", expanding=True)),
)
_OPEN_PACKS = (
    select(
        Pack.account_id,
        Pack.service,
        Pack.id,
        Pack.size,
        Pack.remaining,
        Pack.purchased_at,
        Pack.expires_at,
        Pack.low_alerted,
        Pack.exhausted_alerted,
    )
    .where(Pack.account_id.in_(bindparam("accounts", expanding=True)), Pack.remaining > 0)
    .order_by(Pack.expires_at, Pack.purchased_at, Pack.id)
)


@dataclass(frozen=True)
class Call:
    account_id: int
    service: str
    action: str
    request_id: str
    at: datetime


@dataclass(eq=False)  # identity: two waiters for the same call are still two callers
class _Waiter:
    call: Call
    # Set when the call is committed (or failed), or when this caller is promoted to leader.
    wake: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    promoted: bool = False
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

    `load` reads the months' free-pack use and the accounts' packs once per batch (two queries), inside the
    writing transaction that holds the write lock."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._free_used: dict[tuple[int, str, str], int] = {}
        self._packs: dict[tuple[int, str], list[_PackState]] = {}
        self.alerts: list[dict[str, object]] = []

    def load(self, conn: Connection, keys: set[tuple[int, str, str]]) -> None:
        """Read the state of these (account, service, month) keys."""
        accounts = sorted({k[0] for k in keys})
        months = sorted({k[2] for k in keys})
        self._free_used = dict.fromkeys(keys, 0)
        for account_id, service, month, used in conn.execute(_FREE_USED, {"accounts": accounts, "months": months}):
            if (account_id, service, month) in self._free_used:
                self._free_used[(account_id, service, month)] = int(used)
        with_packs = {(k[0], k[1]) for k in keys if self._catalog.service(k[1]).has_packs}
        self._packs = {key: [] for key in with_packs}
        if not with_packs:
            return
        for account_id, service, *state in conn.execute(_OPEN_PACKS, {"accounts": accounts}):
            if (account_id, service) in self._packs:
                self._packs[(account_id, service)].append(_PackState(*state))

    def assign(self, call: Call, month: str) -> tuple[str, int | None]:
        key = (call.account_id, call.service, month)
        if self._free_used[key] < self._catalog.free_calls_per_month:
            self._free_used[key] += 1
            return "free", None
        for pack in self._packs.get((call.account_id, call.service), ()):
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
            self._alert(
                call,
                pack,
                "pack_low",
                f"Pack #{pack.id} ({call.service}, {pack.size:,} calls) has {pack.remaining:,} calls left, "
                f"below {ratio:.0%}.",
            )
        if not pack.exhausted_alerted and pack.remaining == 0:
            pack.exhausted_alerted = True
            self._alert(
                call,
                pack,
                "pack_exhausted",
                f"Pack #{pack.id} ({call.service}, {pack.size:,} calls) is exhausted; further calls use "
                f"other packs or postpaid.",
            )

    def _alert(self, call: Call, pack: _PackState, kind: str, message: str) -> None:
        self.alerts.append(
            {
                "account_id": call.account_id,
                "kind": kind,
                "pack_id": pack.id,
                "service": call.service,
                "message": message,
                "created_at": utcnow(),
                "delivered_at": None,
                "attempts": 0,
                "last_error": "",
            }
        )


class LocalDays:
    """Billing-zone day and month of an instant, cached per local day (the meter asks once per call)."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._start = self._end = datetime.max.replace(tzinfo=UTC)
        self._labels = ("", "")

    def of(self, at: datetime) -> tuple[str, str]:
        """(month 'YYYY-MM', day 'YYYY-MM-DD') of `at` in the billing zone."""
        if not self._start <= at < self._end:
            local = at.astimezone(self._zone)
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            self._start = midnight.astimezone(UTC)
            self._end = (midnight.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=self._zone).astimezone(UTC)
            self._labels = (month_of(at, self._zone), day_of(at, self._zone))
        return self._labels


_ENTRY_COLUMNS = ("request_id", "account_id", "service", "action", "at", "month", "day", "source", "pack_id")
_COUNTERS = ("calls", "free_calls", "pack_calls", "postpaid_calls")


def _marker(conn: Connection) -> str:
    return {"qmark": "?", "format": "%s", "pyformat": "%s"}[conn.dialect.paramstyle]


def _executemany(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple[object, ...]], suffix: str = ""
) -> None:
    """INSERT rows straight through the driver's executemany: the hot path (SQLAlchemy's per-row parameter
    handling costs more than SQLite's insert). Values pass each column type's own bind processor, as
    SQLAlchemy would. The SQL is the same on SQLite and PostgreSQL."""
    processors = [table.c[name].type.bind_processor(conn.dialect) for name in columns]
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([_marker(conn)] * len(columns))}){suffix}"
    )
    conn.exec_driver_sql(sql, [tuple(p(v) if p else v for p, v in zip(processors, row, strict=True)) for row in rows])


def _add_counters(
    conn: Connection, table: Table, keys: tuple[str, ...], rows: dict[tuple[object, ...], dict[str, int]]
) -> None:
    """Upsert counter rows, adding to the existing counts (ON CONFLICT ... DO UPDATE, SQLite and PostgreSQL)."""
    pk = ", ".join(c.name for c in table.primary_key.columns)
    adds = ", ".join(f"{c} = {table.name}.{c} + excluded.{c}" for c in _COUNTERS)
    _executemany(
        conn,
        table,
        keys + _COUNTERS,
        [key + tuple(deltas.get(c, 0) for c in _COUNTERS) for key, deltas in rows.items()],
        f" ON CONFLICT ({pk}) DO UPDATE SET {adds}",
    )


def write_calls(
    conn: Connection, calls: list[Call], catalog: Catalog, zone: ZoneInfo, days: LocalDays | None = None
) -> list[dict[str, object]]:
    """Append the calls not yet in the ledger (idempotent per RequestId); return the alerts it queued."""
    unique = {c.request_id: c for c in reversed(calls)}  # first occurrence wins
    ids = list(unique)
    for start in range(0, len(ids), _IN_CHUNK):
        for (seen,) in conn.execute(_SEEN_REQUEST_IDS, {"ids": ids[start : start + _IN_CHUNK]}):
            unique.pop(seen, None)
    if not unique:
        return []
    days = days or LocalDays(zone)
    todo = [(call, *days.of(call.at)) for call in sorted(unique.values(), key=lambda c: c.at)]
    allocator = Allocator(catalog)
    allocator.load(conn, {(call.account_id, call.service, month) for call, month, _ in todo})
    rows = []
    monthly: dict[tuple[object, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    daily: dict[tuple[object, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for call, month, day in todo:
        source, pack_id = allocator.assign(call, month)
        rows.append(
            (
                call.request_id,
                call.account_id,
                call.service,
                call.action,
                call.at,
                month,
                day,
                source,
                pack_id,
            )
        )
        for counters in (
            monthly[(call.account_id, call.service, month)],
            daily[(call.account_id, call.service, day, month)],
        ):
            counters["calls"] += 1
            counters[f"{source}_calls"] += 1
    _executemany(conn, UsageEntry.__table__, _ENTRY_COLUMNS, rows)
    _add_counters(conn, UsageMonth.__table__, ("account_id", "service", "month"), monthly)
    _add_counters(conn, UsageDay.__table__, ("account_id", "service", "day", "month"), daily)
    packs = Pack.__table__
    touched = allocator.touched_packs()
    if touched:
        conn.execute(
            update(packs)
            .where(packs.c.id == bindparam("pack_id"))
            .values(
                remaining=bindparam("left"),
                low_alerted=bindparam("low"),
                exhausted_alerted=bindparam("exhausted"),
            ),
            [
                {"pack_id": p.id, "left": p.remaining, "low": p.low_alerted, "exhausted": p.exhausted_alerted}
                for p in touched
            ],
        )
    if allocator.alerts:
        conn.execute(insert(Alert.__table__), allocator.alerts)
    return allocator.alerts


class Meter:
    """Group commit with a rotating leader: one transaction (and one fsync) per batch of pending calls.

    The caller that finds no commit in progress becomes the leader: it commits everything pending (its own
    call included) on its own thread, so a lone caller pays no thread hand-off. Callers arriving meanwhile
    queue up and sleep; once the leader's own call is committed, it hands the lead to the oldest of them,
    whose batch then holds everyone who queued during the previous commit."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        zone: ZoneInfo,
        on_alerts: Callable[[], None] | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._zone = zone
        self._on_alerts = on_alerts
        self._max_batch = max_batch
        self._days = LocalDays(zone)
        self._lock = threading.Lock()
        self._pending: list[_Waiter] = []
        self._leading = False

    def record(self, call: Call) -> None:
        """Returns once the call is committed in the ledger (or was already there); raises if it cannot be."""
        waiter = _Waiter(call)
        with self._lock:
            self._pending.append(waiter)
            lead = not self._leading
            self._leading = True
        while not lead:
            waiter.wake.wait()
            waiter.wake.clear()
            if waiter.done:
                break
            lead = waiter.promoted
        if lead:
            self._lead(waiter)
        if waiter.error is not None:
            raise waiter.error

    def _lead(self, own: _Waiter) -> None:
        """Commit batches until our own call is done, then pass the lead on (or step down if nobody waits)."""
        try:
            while True:
                with self._lock:
                    if own.done:
                        self._pass_lead()
                        return
                    batch = self._pending[: self._max_batch]
                    del self._pending[: self._max_batch]
                self._commit(batch)
        except BaseException:  # e.g. the thread is interrupted: the others must not wait for a dead leader
            with self._lock:
                if own in self._pending:
                    self._pending.remove(own)
                self._pass_lead()
            raise

    def _pass_lead(self) -> None:
        """Under the lock: promote the oldest waiting caller, or step down when nobody waits."""
        if self._pending:
            successor = self._pending[0]
            successor.promoted = True
            successor.wake.set()
        else:
            self._leading = False

    def _commit(self, batch: list[_Waiter]) -> None:
        """Commit a batch and wake its callers; never raises (a call that fails carries its error)."""
        try:
            calls = [w.call for w in batch]
            with write_transaction(self._db, {c.account_id for c in calls}) as conn:
                alerts = write_calls(conn, calls, self._catalog, self._zone, self._days)
        except Exception as error:  # one bad call must not fail the others: retry them one by one
            if len(batch) > 1:
                for waiter in batch:
                    self._commit([waiter])
                return
            log.exception("billing: could not record call %s", batch[0].call.request_id)
            batch[0].error = error
            self._finish(batch)
            return
        self._finish(batch)
        if alerts and self._on_alerts is not None:
            try:
                self._on_alerts()
            except Exception:  # alert delivery must never fail a call
                log.exception("billing: could not wake the alert sender")

    def _finish(self, batch: list[_Waiter]) -> None:
        with self._lock:
            for waiter in batch:
                waiter.done = True
        for waiter in batch:
            waiter.wake.set()
