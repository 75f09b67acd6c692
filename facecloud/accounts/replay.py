"""The guard of the opt-in strict replay mode (FACECLOUD_REPLAY_MODE=strict; the default follows Tencent and
serves every correctly signed request within the clock window: docs/security.md, "Replays").

Every signature is remembered (with the action that first used it, for the logs). TC3 has no nonce, its timestamp has
one-second resolution, and the SDK does not sign X-TC-Action: so two reads with the same body within a second
(GetGroupInfo then GetPersonListNum of one group) share a signature legitimately, and reads are always served. A
signature seen before, under any action, never serves a write or a billable call: a replay cannot change data, bill
the victim, or turn a captured read into DeletePerson with the same body; nor can an ordinary program repeat a write
or billable body within one second.

In-process for a single worker, a table of the database for several workers sharing it, Redis when configured."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

from sqlalchemy import Float, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from facecloud.db import Base, Database


class SeenSignature(Base):
    __tablename__ = "seen_signatures"

    signature: Mapped[str] = mapped_column(String(64), primary_key=True)
    action: Mapped[str] = mapped_column(String(64), default="")
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class ReplayGuard(Protocol):
    def claim(self, signature: str, action: str, ttl_s: float) -> str | None:
        """None the first time a signature is seen within ttl_s; else the action that first used it."""


class MemoryReplayGuard:
    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def claim(self, signature: str, action: str, ttl_s: float) -> str | None:
        now = time.time()
        with self._lock:
            if now > self._next_sweep:
                self._seen = {s: v for s, v in self._seen.items() if v[0] > now}
                self._next_sweep = now + 10
            seen = self._seen.get(signature)
            if seen and seen[0] > now:
                return seen[1]
            self._seen[signature] = (now + ttl_s, action)
            return None


class SqlReplayGuard:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._next_sweep = 0.0

    @classmethod
    def beside(cls, db: Database, data_dir: Path) -> SqlReplayGuard:
        """On SQLite, a cache file of its own without fsync: replay checks must not queue behind the ledger's
        durable commits (a crash may forget the last seconds of signatures, which expire within minutes anyway)."""
        if not db.is_sqlite:
            return cls(db)
        cache = Database(f"sqlite:///{(data_dir / 'replay-cache.db').resolve()}", durable=False)
        Base.metadata.create_all(cache.engine, tables=[SeenSignature.__table__])
        return cls(cache)

    def claim(self, signature: str, action: str, ttl_s: float) -> str | None:
        now = time.time()
        try:
            with self._db.session() as s:
                if now > self._next_sweep:
                    s.execute(delete(SeenSignature).where(SeenSignature.expires_at < now))
                    self._next_sweep = now + 30
                s.add(SeenSignature(signature=signature, action=action, expires_at=now + ttl_s))
        except IntegrityError:
            with self._db.session() as s:
                return s.scalar(select(SeenSignature.action).where(SeenSignature.signature == signature)) or "?"
        return None


class RedisReplayGuard:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)

    def claim(self, signature: str, action: str, ttl_s: float) -> str | None:
        key = f"facecloud:sig:{signature}"
        if self._redis.set(key, action, nx=True, ex=max(1, int(ttl_s))):
            return None
        previous = self._redis.get(key)
        return previous.decode() if previous else "?"
