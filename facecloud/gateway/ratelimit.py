"""Rate limits per account and action group (Tencent: 50 QPS per group, 5 for DetectLiveFaceAccurate).

Every limiter counts calls in fixed one-second windows keyed by (account, group, second), so the three
implementations agree: in-process for one worker, a shared memory-mapped file for several workers on one
machine, Redis (one atomic Lua script) when Redis is configured."""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import threading
import time
from pathlib import Path
from typing import Protocol

from facecloud.config import Settings
from facecloud.errors import ApiError

LIVE_ACCURATE_GROUP = "DetectLiveFaceAccurate"


class RateLimiter(Protocol):
    def allow(self, account_id: int, group: str, limit: int) -> bool:
        """Count one call of this account in this group; False when this second already reached `limit`."""


def limit_for(settings: Settings, group: str) -> int:
    """The QPS limit of an action group; 0 or less means unlimited."""
    return settings.rate_limit_qps_live_accurate if group == LIVE_ACCURATE_GROUP else settings.rate_limit_qps


def check(limiter: RateLimiter, settings: Settings, account_id: int, group: str) -> None:
    limit = limit_for(settings, group)
    if limit > 0 and not limiter.allow(account_id, group, limit):
        raise ApiError(
            "RequestLimitExceeded",
            f"Request rate limit exceeded: at most {limit} requests per second for `{group}`.",
            f"请求的次数超过了频率限制：`{group}` 每秒最多 {limit} 次。",
        )


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[tuple[int, str], tuple[int, int]] = {}
        self._lock = threading.Lock()

    def allow(self, account_id: int, group: str, limit: int) -> bool:
        second = int(time.time())
        key = (account_id, group)
        with self._lock:
            if len(self._windows) > 100_000:
                self._windows = {k: v for k, v in self._windows.items() if v[0] == second}
            window, count = self._windows.get(key, (second, 0))
            if window != second:
                count = 0
            if count >= limit:
                return False
            self._windows[key] = (second, count + 1)
            return True


class SharedFileRateLimiter:
    """Fixed windows in a memory-mapped file shared by the worker processes of one machine.

    The file is an open-addressed table of SLOTS records (key hash, second, count); an exclusive flock
    around each update makes the read-modify-write atomic across processes. A slot whose window is over
    is free for reuse, so the table only needs room for the keys active within one second."""

    SLOTS = 16384
    PROBES = 64
    _RECORD = struct.Struct("<QqQ")  # key hash, unix second, count

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        size = self.SLOTS * self._RECORD.size
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._lock_file = open(path, "rb")  # noqa: SIM115 (held for the limiter's life)
        self._thread_lock = threading.Lock()

    def allow(self, account_id: int, group: str, limit: int) -> bool:
        digest = hashlib.blake2b(f"{account_id}\0{group}".encode(), digest_size=8).digest()
        key = int.from_bytes(digest, "little") or 1
        second = int(time.time())
        with self._thread_lock:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            try:
                return self._count(key, second, limit)
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    def _count(self, key: int, second: int, limit: int) -> bool:
        free = None
        for probe in range(self.PROBES):
            offset = ((key + probe) % self.SLOTS) * self._RECORD.size
            slot_key, slot_second, count = self._RECORD.unpack_from(self._map, offset)
            if slot_key == key:
                if slot_second != second:
                    count = 0
                if count >= limit:
                    return False
                self._RECORD.pack_into(self._map, offset, key, second, count + 1)
                return True
            if free is None and (slot_key == 0 or slot_second < second):
                free = offset
        if free is None:
            # Table saturated by keys active in this very second: fail open rather than refuse everyone.
            return True
        self._RECORD.pack_into(self._map, free, key, second, 1)
        return True


class RedisRateLimiter:
    # INCR and EXPIRE in one script: the key never outlives its window, even if a worker dies in between.
    _SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], 2) end
return n
"""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._incr = self._redis.register_script(self._SCRIPT)

    def allow(self, account_id: int, group: str, limit: int) -> bool:
        second = int(time.time())
        return int(self._incr(keys=[f"facecloud:rl:{account_id}:{group}:{second}"])) <= limit


def make_rate_limiter(settings: Settings, workers: int) -> RateLimiter:
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url)
    if workers > 1:
        return SharedFileRateLimiter(settings.data_dir / "ratelimit.bin")
    return MemoryRateLimiter()
