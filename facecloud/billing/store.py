"""Write transactions that read, decide and write without a race between processes.

SQLite: BEGIN IMMEDIATE takes the database's write lock before the first read. PostgreSQL: a transaction-scoped
advisory lock per account serialises the writers of one account (metering, purchases, settlement, top-ups)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import postgresql, sqlite

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
            for account_id in sorted(set(account_ids)):
                conn.execute(text("SELECT pg_advisory_xact_lock(:space, :key)"),
                             {"space": _LOCK_SPACE, "key": account_id})
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def add_to_counters(conn: Connection, table: Table, keys: Mapping[str, Any], deltas: Mapping[str, int]) -> None:
    """INSERT the counter row or add `deltas` to it (one statement on SQLite and PostgreSQL)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(table).values({**keys, **deltas})
    conn.execute(insert.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={name: table.c[name] + insert.excluded[name] for name in deltas},
    ))
