"""Thread priorities: heavy model work runs at a lower OS priority than everything else of the server.

On Linux each thread has its own nice value (setpriority on its thread id); raising it needs no privilege, lowering
it again would, so a thread is lowered once, when it starts, and only threads that do nothing but heavy work are."""

from __future__ import annotations

import contextlib
import os
import sys
import threading

# CFS weights: a nice-0 thread gets ~10x the CPU of a nice-10 one on a shared core, so a light call preempts a heavy
# one almost at once, while the heavy one keeps ~9% of a fully contended core (it is slowed, never starved).
HEAVY_WORK_NICE = 10


def lower_this_thread(nice_steps: int = HEAVY_WORK_NICE) -> None:
    """Raise the calling thread's nice value by nice_steps (Linux only; elsewhere, and where refused, nothing)."""
    if nice_steps <= 0 or sys.platform != "linux":
        return
    thread_id = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, thread_id, os.getpriority(os.PRIO_PROCESS, thread_id) + nice_steps)


def thread_nice() -> int:
    """The calling thread's nice value (0 where threads have none of their own)."""
    if sys.platform != "linux":
        return 0
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
