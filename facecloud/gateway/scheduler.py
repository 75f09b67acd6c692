"""Scheduling of model work: a few slots per worker process, a bounded queue per action, fair between actions.

Without it every request thread starts its model work at once: the cores are oversubscribed, and a heavy action
(CompareFace: two images, four embedder passes) falls ever further behind the light ones (p50 2.2 s against
DetectFace's 86 ms under saturation). Here at most `slots` requests of a worker process do model work at a time
(the process's share of the cores); the others wait in their action's queue. When a slot frees it goes to the
queue whose oldest request has the highest response ratio, (waited + cost) / cost, where cost is that action's
measured time in a slot (highest response ratio next): waits grow in proportion to each action's own work, so a
light action is not stuck behind a heavy one and a heavy one does not starve. A full queue answers
RequestLimitExceeded at once instead of letting the wait grow without bound."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field

from pydantic import BaseModel

from facecloud.errors import ApiError

# Request fields that carry pixels: an action with any of them does model work.
IMAGE_FIELDS = frozenset({"Image", "Url", "ImageA", "ImageB", "UrlA", "UrlB", "Images", "Urls"})
DEFAULT_QUEUE_LIMIT = 32
COST_SMOOTHING = 0.2  # weight of the newest measurement in an action's running mean cost
INITIAL_COST_S = 0.05


def does_model_work(request_type: type[BaseModel]) -> bool:
    return not IMAGE_FIELDS.isdisjoint(request_type.model_fields)


def queue_full_error(action: str, limit: int) -> ApiError:
    return ApiError(
        "RequestLimitExceeded",
        f"Too many `{action}` requests are waiting for the face models ({limit} queued): retry later.",
        f"`{action}` 排队等待处理的请求过多（{limit} 个），请稍后重试。",
    )


def wait_timeout_error(seconds: float) -> ApiError:
    return ApiError(
        "FailedOperation.RequestTimeout",
        f"The request waited {seconds:g} s for the face models without being served.",
        f"请求等待人脸模型处理超过 {seconds:g} 秒。",
    )


@dataclass
class _Ticket:
    action: str
    queued_at: float
    granted: threading.Event = field(default_factory=threading.Event)


class ModelWorkScheduler:
    def __init__(
        self,
        slots: int,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        max_wait_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots = max(1, slots)
        self.queue_limit = max(1, queue_limit)
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._lock = threading.Lock()
        self._free = self.slots
        self._queues: dict[str, deque[_Ticket]] = {}
        self._cost: dict[str, float] = {}

    def slot_for(self, action: str, request_type: type[BaseModel]) -> AbstractContextManager[None]:
        """A slot when the action does model work; nothing to wait for otherwise."""
        return self.slot(action) if does_model_work(request_type) else nullcontext()

    @contextmanager
    def slot(self, action: str) -> Iterator[None]:
        ticket = self._enter(action)
        if not ticket.granted.is_set():
            self._wait(ticket)
        started = self._clock()
        try:
            yield
        finally:
            self._leave(action, self._clock() - started)

    def waiting(self) -> dict[str, int]:
        with self._lock:
            return {action: len(queue) for action, queue in self._queues.items() if queue}

    def _enter(self, action: str) -> _Ticket:
        ticket = _Ticket(action, self._clock())
        with self._lock:
            if self._free > 0 and not any(self._queues.values()):
                self._free -= 1
                ticket.granted.set()
                return ticket
            queue = self._queues.setdefault(action, deque())
            if len(queue) >= self.queue_limit:
                raise queue_full_error(action, self.queue_limit)
            queue.append(ticket)
        return ticket

    def _wait(self, ticket: _Ticket) -> None:
        if ticket.granted.wait(self.max_wait_s if self.max_wait_s > 0 else None):
            return
        with self._lock:
            if not ticket.granted.is_set():  # still queued: leave without taking a slot
                self._queues[ticket.action].remove(ticket)
                raise wait_timeout_error(self.max_wait_s)

    def _leave(self, action: str, busy_s: float) -> None:
        with self._lock:
            old = self._cost.get(action)
            self._cost[action] = busy_s if old is None else (1 - COST_SMOOTHING) * old + COST_SMOOTHING * busy_s
            nxt = self._next_ticket()
            if nxt is None:
                self._free += 1
            else:
                nxt.granted.set()  # the slot passes straight to it

    def _next_ticket(self) -> _Ticket | None:
        now = self._clock()
        heads = [queue[0] for queue in self._queues.values() if queue]
        if not heads:
            return None
        best = max(heads, key=lambda t: self._response_ratio(t, now))
        return self._queues[best.action].popleft()

    def _response_ratio(self, ticket: _Ticket, now: float) -> float:
        cost = self._cost.get(ticket.action, INITIAL_COST_S)
        return (now - ticket.queued_at + cost) / cost
