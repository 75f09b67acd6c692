"""The database: one SQLAlchemy engine per process, one declarative Base for every part's tables, and Alembic migrations
(one version branch per part) applied with `Database.migrate()`."""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    Table,
    TypeDecorator,
    create_engine,
    event,
    insert,
    text,
)
from sqlalchemy.orm import DeclarativeBase, MappedColumn, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


# Set by the gateway around an action handler: a write transaction asks it just before committing whether its answer
# will still reach the client. False (the deadline passed) rolls the write back, so a timed-out call leaves nothing
# behind and a retry starts clean; True means the answer and its billing will follow the commit.
commit_gate: ContextVar[Callable[[], bool]] = ContextVar("commit_gate", default=lambda: True)


class InTransaction(Protocol):
    """Work that must commit or roll back with the caller's write transaction (the call's ledger row)."""

    def write(self, conn: Connection) -> None:
        """Runs inside the transaction, after the commit gate said yes, before the commit."""

    def committed(self) -> None:
        """Runs once that transaction committed."""


# Set by the gateway around a billable action: a gallery write runs it in its own transaction, so the write and its
# ledger row commit together (a node killed between two separate commits would keep the write and bill nothing).
in_write_transaction: ContextVar[InTransaction | None] = ContextVar("in_write_transaction", default=None)


class WriteAbandoned(Exception):
    """The commit gate said no: the write was rolled back."""


class Base(DeclarativeBase):
    pass


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone and hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BIGINT on PostgreSQL; INTEGER on SQLite, where only an INTEGER PRIMARY KEY autoincrements (rowid).
BigId = BigInteger().with_variant(Integer, "sqlite")


def serial_key(kind: TypeEngine[int] = BigId) -> MappedColumn[int]:
    """An auto-incremented surrogate primary key."""
    return mapped_column(kind, primary_key=True, autoincrement=True)


def account_ref(**options: bool) -> MappedColumn[int]:
    """The account a row belongs to (accounts.id); options such as index=True or primary_key=True."""
    return mapped_column(ForeignKey("accounts.id"), **options)


def insert_row(conn: Connection, table: Table, **values: object) -> int:
    """INSERT one row; returns its new primary key."""
    return int(conn.execute(insert(table).values(**values)).inserted_primary_key[0])


def _sqlite_pragmas(dbapi_connection, _record, synchronous: str = "FULL") -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; FULL makes a commit durable before it returns.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    def __init__(self, url: str, durable: bool = True) -> None:
        """durable=False (SQLite only) skips the fsync of each commit: for caches that may lose their last writes."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            synchronous = "FULL" if durable else "OFF"
            event.listen(self.engine, "connect", lambda conn, rec: _sqlite_pragmas(conn, rec, synchronous))
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def exclusive(self, name: str, wait: bool = False) -> Iterator[bool]:
        """Whether this process holds the installation-wide lock `name` for the block; never waits, unless `wait`
        (then it waits for the lock and holds it).

        For jobs that must run once per installation, not once per node or worker (settlement, alert delivery,
        change-log compaction, migrations). PostgreSQL: a session advisory lock, released when the block ends or the
        holder's connection dies (a node killed with SIGKILL frees it). SQLite (one machine): a file lock next to the
        database, released when the process dies."""
        if not self.is_sqlite:
            key = zlib.crc32(name.encode()) - 2**31
            with self.engine.connect() as conn:
                if wait:
                    conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                    held = True
                else:
                    held = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
                conn.commit()
                try:
                    yield held
                finally:
                    if held:
                        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                        conn.commit()
            return
        path = self.url.removeprefix("sqlite:///")
        if not path or path == ":memory:":
            yield True  # a private database: this process is the installation
            return
        with open(f"{path}.{name}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["engine"] = self.engine
        # Two processes starting on a fresh database (a node and the CLI, two nodes of a cluster) would both create
        # its tables, and one would fail: "table accounts already exists".
        with self.exclusive("migrate", wait=True):
            command.upgrade(config, "heads")

    def dispose(self) -> None:
        self.engine.dispose()
