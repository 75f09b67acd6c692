"""A deadline for an action handler that runs in a worker thread.

A thread cannot be stopped, so a late handler keeps running after the client has been told
FailedOperation.RequestTimeout. What must not happen is that such an unanswered call gets billed, or that
a call already billed is answered with an error. `CallOutcome` decides that exactly once, under a lock: either
the handler commits (its billing is recorded, its answer will be sent) or the deadline abandons it first."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from facecloud.errors import ApiError

T = TypeVar("T")


def timeout_error(seconds: float) -> ApiError:
    return ApiError(
        "FailedOperation.RequestTimeout",
        f"The request did not complete within {seconds:g} s.",
        f"请求处理超时（{seconds:g} 秒）。",
    )


class CallOutcome:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "running"

    def commit(self) -> bool:
        """The handler is done and about to bill/answer; False when the deadline already abandoned it."""
        return self._settle("committed", unless="abandoned")

    def abandon(self) -> bool:
        """The deadline passed; False when the handler committed first (then its answer is moments away)."""
        return self._settle("abandoned", unless="committed")

    def _settle(self, state: str, unless: str) -> bool:
        with self._lock:
            if self._state == unless:
                return False
            self._state = state
            return True


async def run_with_deadline(fn: Callable[[CallOutcome], T], seconds: float) -> T:
    """Run fn(outcome) in the thread pool; fn calls outcome.commit() before any effect the client must see."""
    outcome = CallOutcome()
    task = asyncio.ensure_future(run_in_threadpool(fn, outcome))
    if seconds <= 0:
        return await task
    try:
        return await asyncio.wait_for(asyncio.shield(task), seconds)
    except TimeoutError:
        if outcome.abandon():
            task.add_done_callback(_consume_result)
            raise timeout_error(seconds) from None
        return await task


def _consume_result(task: asyncio.Future[object]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log "exception was never retrieved"
