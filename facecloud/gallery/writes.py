"""The gallery's write transaction: the account's lock first, then the commit gate and the call's ledger row, the
change-log rows last.

Writes are serialised per account, not per installation: a write takes its account's lock first (a PostgreSQL
advisory lock; SQLite has one writer anyway), which is all that uniqueness and the account/group limits need.
The change-log rows are appended last, under a short installation-wide lock held to the commit, so change-log
order is still commit order (a replay never skips a row that commits later with a smaller seq)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from facecloud.db import Database, WriteAbandoned, commit_gate, in_write_transaction
from facecloud.gallery.index.base import VectorIndex
from facecloud.gallery.models import AccountCounterRow, ChangeRow, StateRow

# PostgreSQL advisory lock keys (namespace, key): one per account, and one for appending to the change log.
ACCOUNT_LOCK = 0x6741
LOG_LOCK = 0x6742


class Writes:
    db: Database
    index: VectorIndex

    def _lock_writes(self, session: Session) -> None:
        session.execute(update(StateRow).where(StateRow.key == "write_lock").values(value=StateRow.value))

    @contextmanager
    def _write(self, account_id: int) -> Iterator[Session]:
        """One write transaction of the account: its lock first; then the commit gate and, in the same transaction,
        the call's ledger row (in_write_transaction); its change-log rows last."""
        also = in_write_transaction.get()
        with self.db.session() as session:
            self._lock_account(session, account_id)
            log: list[ChangeRow] = []
            session.info["gallery_log"] = log
            yield session
            if not commit_gate.get()():
                raise WriteAbandoned
            if also is not None:
                also.write(session.connection())
            if log:
                self._lock_log(session)
                session.add_all(log)
                session.flush()
        if also is not None:
            also.committed()

    def _lock_account(self, session: Session, account_id: int) -> None:
        if self.db.is_sqlite:
            self._lock_writes(session)  # starts the write transaction now (SQLite allows one writer)
        else:
            session.execute(select(func.pg_advisory_xact_lock(ACCOUNT_LOCK, account_id)))

    def _lock_log(self, session: Session) -> None:
        if not self.db.is_sqlite:
            session.execute(select(func.pg_advisory_xact_lock(LOG_LOCK, 0)))

    def _log(self, session: Session, account_id: int, op: str, group_pk: int, item_pk: int = 0) -> None:
        session.info["gallery_log"].append(ChangeRow(account_id=account_id, op=op, group_pk=group_pk, item_pk=item_pk))

    def _count_faces(self, session: Session, account_id: int, delta: int) -> None:
        counter = session.get(AccountCounterRow, account_id)
        if counter is None:
            session.add(AccountCounterRow(account_id=account_id, faces=max(delta, 0)))
        elif delta:
            counter.faces = counter.faces + delta
