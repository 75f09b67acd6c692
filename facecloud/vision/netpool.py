"""A small pool of OpenCV networks: an OpenCV net is not safe to share between threads, and one per thread
of a 40-thread server pool would cost memory for no speed on a few cores."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class NetPool(Generic[T]):
    def __init__(self, create: Callable[[], T], size: int) -> None:
        self._create = create
        self._size = max(1, size)
        self._created = 0
        self._idle: queue.LifoQueue[T] = queue.LifoQueue()
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[T]:
        net = self._take()
        try:
            yield net
        finally:
            self._idle.put(net)

    def _take(self) -> T:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._created < self._size:
                self._created += 1
                return self._create()
        return self._idle.get()
