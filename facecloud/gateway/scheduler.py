"""Scheduling of model work: slots per worker process and work class, a bounded queue per action, fair between
actions, and heavy work at a lower OS priority than light work.

Without it every request thread starts its model work at once: the cores are oversubscribed, and a heavy action
(CompareFace: two images, four embedder passes) falls ever further behind the light ones (p50 2.2 s against
DetectFace's 86 ms under saturation). Here at most `slots` requests of a worker process do model work at a time
(the process's share of the cores); the others wait in their action's queue. When a slot frees it goes to the
queue whose oldest request has the highest response ratio, (waited + cost) / cost, where cost is that action's
measured time in a slot (highest response ratio next): waits grow in proportion to each action's own work, so a
light action is not stuck behind a heavy one and a heavy one does not starve. A full queue answers
RequestLimitExceeded at once instead of letting the wait grow without bound.

Queue order alone cannot keep a 9 ms DetectFace from waiting behind a 100-200 ms CompareFace that holds the slot,
nor keep the heavy call's threads from taking the core from a light call (even DeletePerson, which does no model
work) once both run. So actions fall into two classes: heavy ones match faces (registered with heavy=True:
comparison, search, verification, enrolment; each runs the embedder on every image, several times the work of a
detection), light ones detect and analyse (DetectFace, AnalyzeFace, DetectLiveFace). Each class has its own slots
(as many by default; FACECLOUD_LIGHT_WORK_SLOTS gives light calls more), and heavy work runs on threads of a lower
OS priority (facecloud.priority): a light call starts at once and the kernel gives it the core the heavy call was
using; the heavy call goes on with what light work leaves (never nothing: a niced thread keeps a share of a
contended core, and light work is itself bounded by its slots). The class is declared, not measured: a threshold on
each action's least time in a slot depended on the machine (on a faster one SearchFaces, 41 ms, came under 50 ms)
and on the requests (one CreatePerson that failed fast, no face, made CreatePerson light for good), and then 50-100 ms
calls held the light slots."""

from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from facecloud.errors import ApiError
from facecloud.priority import HEAVY_WORK_NICE, lower_this_thread

T = TypeVar("T")
Runner = Callable[[Callable[[], Any]], Any]

# Request fields that carry pixels: an action with any of them does model work.
IMAGE_FIELDS = frozenset({"Image", "Url", "ImageA", "ImageB", "UrlA", "UrlB", "Images", "Urls"})
DEFAULT_QUEUE_LIMIT = 32
COST_SMOOTHING = 0.2  # weight of the newest measurement in an action's running mean cost
INITIAL_COST_S = 0.05
LIGHT, HEAVY = "light", "heavy"


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


def run_here(work: Callable[[], T]) -> T:
    return work()


@dataclass
class _Ticket:
    action: str
    queued_at: float
    granted: threading.Event = field(default_factory=threading.Event)


class _SlotPool:
    """The slots of one work class: bounded queues per action, highest response ratio next."""

    def __init__(self, slots: int, queue_limit: int, clock: Callable[[], float], cost: Callable[[str], float]):
        self.queue_limit = queue_limit
        self._clock = clock
        self._cost = cost
        self._free = slots
        self._queues: dict[str, deque[_Ticket]] = {}

    def enter(self, action: str) -> _Ticket:
        """Called under the scheduler's lock."""
        ticket = _Ticket(action, self._clock())
        if self._free > 0 and not any(self._queues.values()):
            self._free -= 1
            ticket.granted.set()
            return ticket
        queue = self._queues.setdefault(action, deque())
        if len(queue) >= self.queue_limit:
            raise queue_full_error(action, self.queue_limit)
        queue.append(ticket)
        return ticket

    def withdraw(self, ticket: _Ticket) -> None:
        self._queues[ticket.action].remove(ticket)

    def leave(self) -> None:
        """Called under the scheduler's lock: the slot passes straight to the next ticket, or is freed."""
        nxt = self._next_ticket()
        if nxt is None:
            self._free += 1
        else:
            nxt.granted.set()

    def waiting(self) -> dict[str, int]:
        return {action: len(queue) for action, queue in self._queues.items() if queue}

    def _next_ticket(self) -> _Ticket | None:
        now = self._clock()
        heads = [queue[0] for queue in self._queues.values() if queue]
        if not heads:
            return None
        best = max(heads, key=lambda t: self._response_ratio(t, now))
        return self._queues[best.action].popleft()

    def _response_ratio(self, ticket: _Ticket, now: float) -> float:
        cost = self._cost(ticket.action)
        return (now - ticket.queued_at + cost) / cost


class ModelWorkScheduler:
    def __init__(
        self,
        slots: int,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        max_wait_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        heavy_nice: int = HEAVY_WORK_NICE,
        light_slots: int = 0,
    ) -> None:
        """`slots` heavy calls at once, and `light_slots` light ones (as many as heavy where 0)."""
        self.slots = max(1, slots)
        self.light_slots = light_slots if light_slots > 0 else self.slots
        self.queue_limit = max(1, queue_limit)
        self.max_wait_s = max_wait_s
        self.heavy_nice = heavy_nice
        self._clock = clock
        self._lock = threading.Lock()
        self._cost: dict[str, float] = {}
        self._pools = {
            cls: _SlotPool(count, self.queue_limit, clock, self.cost)
            for cls, count in ((LIGHT, self.light_slots), (HEAVY, self.slots))
        }
        self._heavy_threads: ThreadPoolExecutor | None = None

    def cost(self, action: str) -> float:
        return self._cost.get(action, INITIAL_COST_S)

    def slot_for(self, action: str, request_type: type[BaseModel], heavy: bool) -> AbstractContextManager[Runner]:
        """A slot when the action does model work; nothing to wait for otherwise. Gives the runner to call the
        work with (on a lower-priority thread for heavy work, here for light work)."""
        return self.slot(action, heavy) if does_model_work(request_type) else nullcontext(run_here)

    @contextmanager
    def slot(self, action: str, heavy: bool = False) -> Iterator[Runner]:
        pool = self._pools[HEAVY if heavy else LIGHT]
        with self._lock:
            ticket = pool.enter(action)
        if not ticket.granted.is_set():
            self._wait(pool, ticket)
        started, finished = self._clock(), False
        try:
            yield self._run_heavy if heavy else run_here
            finished = True
        finally:
            # Only finished work teaches the cost: a call that fails fast (no face) says nothing of the action's work.
            self._leave(pool, action, self._clock() - started if finished else None)

    def waiting(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for pool in self._pools.values():
                for action, count in pool.waiting().items():
                    counts[action] = counts.get(action, 0) + count
            return counts

    def _run_heavy(self, work: Callable[[], T]) -> T:
        """The work on one of the low-priority threads (as many as heavy slots); the caller waits for it."""
        with self._lock:
            if self._heavy_threads is None:
                self._heavy_threads = ThreadPoolExecutor(
                    max_workers=self.slots,
                    thread_name_prefix="facecloud-heavy",
                    initializer=lower_this_thread,
                    initargs=(self.heavy_nice,),
                )
        context = contextvars.copy_context()
        return self._heavy_threads.submit(context.run, work).result()

    def _wait(self, pool: _SlotPool, ticket: _Ticket) -> None:
        if ticket.granted.wait(self.max_wait_s if self.max_wait_s > 0 else None):
            return
        with self._lock:
            if not ticket.granted.is_set():  # still queued: leave without taking a slot
                pool.withdraw(ticket)
                raise wait_timeout_error(self.max_wait_s)

    def _leave(self, pool: _SlotPool, action: str, busy_s: float | None) -> None:
        with self._lock:
            if busy_s is not None:
                old = self._cost.get(action)
                self._cost[action] = busy_s if old is None else (1 - COST_SMOOTHING) * old + COST_SMOOTHING * busy_s
            pool.leave()
