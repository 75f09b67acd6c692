"""Write transactions that read, decide and write without a race between processes.

SQLite: BEGIN IMMEDIATE takes the database's write lock before the first read. PostgreSQL: a transaction-
scoped advisory lock per account serialises the writers of one account (metering, purchases, settlement, top- ups)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text

from facecloud.db import Database

# Namespace of the advisory locks (first key of pg_advisory_xact_lock(int, int)): "bill".
_LOCK_SPACE = 0x62696C6C


@contextmanager
def write_transaction(db: Database, account_ids: Iterable[int] = ()) -> Iterator[Connection]:
    """A connection inside a transaction that commits at the end of the block (rolls back if it raises)."""
    with db.engine.connect() as conn:
        if db.is_sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            lock_accounts(conn, account_ids)
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def lock_accounts(conn: Connection, account_ids: Iterable[int]) -> None:
    """PostgreSQL: hold the accounts' billing locks to the end of conn's transaction (in account order, so two
    writers never wait for each other in a cycle). SQLite: nothing to do, a writing transaction excludes the others."""
    if conn.dialect.name != "postgresql":
        return
    for account_id in sorted(set(account_ids)):
        conn.execute(text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": _LOCK_SPACE, "key": account_id})
