"""A small pool of OpenCV networks: an OpenCV net is not safe to share between threads, and one per thread
of a 40-thread server pool would cost memory for no speed on a few cores."""

from __future__ import annotations

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
        self._idle: list[T] = []  # the last returned first: its memory is the most likely still in cache
        self._changed = threading.Condition()

    @contextmanager
    def borrow(self) -> Iterator[T]:
        net = self._take()
        try:
            yield net
        finally:
            with self._changed:
                self._idle.append(net)
                self._changed.notify()

    def _take(self) -> T:
        with self._changed:
            while not self._idle and self._created >= self._size:
                self._changed.wait()
            if self._idle:
                return self._idle.pop()
            self._created += 1
        try:
            return self._create()
        except BaseException:  # a net that was never made must not count, or the pool shrinks for good
            with self._changed:
                self._created -= 1
                self._changed.notify()
            raise
