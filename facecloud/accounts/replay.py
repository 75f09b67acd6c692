"""Replay protection: a signature may be used once within the clock window.

In-process for a single worker, a table of the database for several workers sharing it, Redis when configured."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from sqlalchemy import Float, String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from facecloud.db import Base, Database


class SeenSignature(Base):
    __tablename__ = "seen_signatures"

    signature: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class ReplayGuard(Protocol):
    def first_use(self, signature: str, ttl_s: float) -> bool:
        """True the first time a signature is seen within ttl_s, False for a replay."""


class MemoryReplayGuard:
    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def first_use(self, signature: str, ttl_s: float) -> bool:
        now = time.time()
        with self._lock:
            if now > self._next_sweep:
                self._seen = {s: t for s, t in self._seen.items() if t > now}
                self._next_sweep = now + 10
            if self._seen.get(signature, 0) > now:
                return False
            self._seen[signature] = now + ttl_s
            return True


class SqlReplayGuard:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._next_sweep = 0.0

    def first_use(self, signature: str, ttl_s: float) -> bool:
        now = time.time()
        try:
            with self._db.session() as s:
                if now > self._next_sweep:
                    s.execute(delete(SeenSignature).where(SeenSignature.expires_at < now))
                    self._next_sweep = now + 30
                s.add(SeenSignature(signature=signature, expires_at=now + ttl_s))
        except IntegrityError:
            return False
        return True


class RedisReplayGuard:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)

    def first_use(self, signature: str, ttl_s: float) -> bool:
        return bool(self._redis.set(f"facecloud:sig:{signature}", 1, nx=True, ex=max(1, int(ttl_s))))
