"""The OpenCV net pool: at most `size` nets, reused; a net that failed to build leaves its place free."""

from __future__ import annotations

import threading
import time

import pytest

from facecloud.vision.netpool import NetPool


def test_nets_are_reused_and_never_more_than_size() -> None:
    made: list[object] = []

    def build() -> object:
        made.append(object())
        return made[-1]

    pool: NetPool[object] = NetPool(build, size=2)
    with pool.borrow() as first, pool.borrow() as second:
        assert first is not second
    with pool.borrow() as again:
        assert again in (first, second)
    assert len(made) == 2


def test_a_failed_build_does_not_use_up_a_place() -> None:
    outcomes: list[str | None] = [None, "net"]  # None: the first build fails

    def build() -> str:
        outcome = outcomes.pop(0)
        if outcome is None:
            raise MemoryError("no memory for the net")
        return outcome

    pool: NetPool[str] = NetPool(build, size=1)
    with pytest.raises(MemoryError), pool.borrow():
        pass
    borrowed: list[str] = []

    def borrow() -> None:  # before the fix it waited for ever for a net that was never made
        with pool.borrow() as net:
            borrowed.append(net)

    borrower = threading.Thread(target=borrow, daemon=True)
    borrower.start()
    borrower.join(timeout=5)
    assert borrowed == ["net"]


def test_a_caller_waiting_while_the_only_build_fails_builds_its_own() -> None:
    building, fail_now = threading.Event(), threading.Event()
    outcomes: list[str | None] = [None, "net"]

    def build() -> str:
        outcome = outcomes.pop(0)
        if outcome is None:
            building.set()
            fail_now.wait(5)
            raise MemoryError("no memory for the net")
        return outcome

    pool: NetPool[str] = NetPool(build, size=1)
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with pool.borrow():
                pass
        except MemoryError as error:
            errors.append(error)

    failing = threading.Thread(target=first, daemon=True)
    failing.start()
    assert building.wait(5)
    borrowed: list[str] = []

    def second() -> None:
        with pool.borrow() as net:
            borrowed.append(net)

    waiting = threading.Thread(target=second, daemon=True)
    waiting.start()
    time.sleep(0.2)  # the second caller is waiting for the only place by now
    fail_now.set()
    failing.join(5)
    waiting.join(5)
    assert len(errors) == 1 and borrowed == ["net"]
