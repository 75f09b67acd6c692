"""Rate limits per account and action group: each limiter alone, across processes, and through the gateway."""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from facecloud.gateway import ratelimit
from facecloud.gateway.ratelimit import (
    LIVE_ACCURATE_GROUP,
    MemoryRateLimiter,
    RedisRateLimiter,
    SharedFileRateLimiter,
    make_rate_limiter,
)
from facecloud.gateway.registry import ActionContext, TencentRequest, action, registry
from facecloud.runtime import Runtime
from tests.conftest import _serve
from tests.conftest import test_settings as make_settings
from tests.hardening.support import signed_post

T = TypeVar("T")


class ProbeRequest(TencentRequest):
    Note: str = ""


def probe(req: ProbeRequest, ctx: ActionContext) -> dict:
    return {"Note": req.Note}


# Free test actions: one in its own group, one in DetectLiveFaceAccurate's group (the lower limit).
if "HardeningProbe" not in registry():
    action("HardeningProbe", ProbeRequest)(probe)
    action("HardeningProbeOther", ProbeRequest)(probe)
    action("HardeningProbeAccurate", ProbeRequest, limit_group=LIVE_ACCURATE_GROUP)(probe)


def _start_of_next_second(margin: float = 0.02) -> None:
    time.sleep(1 - (time.time() % 1) + margin)


def test_memory_limiter_counts_per_account_group_and_second():
    limiter = MemoryRateLimiter()
    _start_of_next_second()
    assert [limiter.allow(1, "g", 3) for _ in range(5)] == [True] * 3 + [False] * 2
    assert limiter.allow(2, "g", 3) and limiter.allow(1, "h", 3)
    _start_of_next_second()
    assert limiter.allow(1, "g", 3)


class _FrozenSecond:
    """Every process counts in one window, however the loaded machine schedules it around a second boundary."""

    def __init__(self, second: int) -> None:
        self.second = second

    def time(self) -> float:
        return self.second + 0.5


def _burst(kind: str, target: str, account: int, second: int, tries: int, limit: int, start, results) -> None:  # type: ignore[no-untyped-def]
    limiter = SharedFileRateLimiter(Path(target)) if kind == "file" else RedisRateLimiter(target)
    ratelimit.time = _FrozenSecond(second)  # this forked process's copy of the module
    start.wait(timeout=60)  # every process ready first: Redis's key lives 2 s from the first call (real time)
    results.put(sum(limiter.allow(account, "burst", limit) for _ in range(tries)))


def _allowed_across_processes(kind: str, target: str, processes: int = 4, tries: int = 40, limit: int = 25) -> int:
    account = uuid.uuid4().int % 10**9
    context = multiprocessing.get_context("fork")
    results, start = context.Queue(), context.Barrier(processes)
    second = int(time.time())  # all processes burst inside the same one-second window
    workers = [
        context.Process(target=_burst, args=(kind, target, account, second, tries, limit, start, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    total = sum(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=10)
    return total


def test_shared_file_limiter_holds_across_processes(tmp_path):
    assert _allowed_across_processes("file", str(tmp_path / "rl.bin")) == 25


@pytest.mark.redis
def test_redis_limiter_holds_across_processes(redis_url):
    assert _allowed_across_processes("redis", redis_url) == 25


def test_limiter_choice(tmp_path):
    settings = make_settings(tmp_path)
    assert isinstance(make_rate_limiter(settings, 1), MemoryRateLimiter)
    assert isinstance(make_rate_limiter(settings, 2), SharedFileRateLimiter)
    assert isinstance(
        make_rate_limiter(settings.with_overrides(redis_url="redis://127.0.0.1:1/0"), 1), RedisRateLimiter
    )


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    runtime = Runtime(make_settings(tmp_path_factory.mktemp("rl"), rate_limit_qps=4, rate_limit_qps_live_accurate=2))
    yield from _serve(runtime)


def _codes(server, creds, action_name: str, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    codes = []
    with httpx.Client() as client:
        for i in range(n):
            body = json.dumps({"Note": f"{uuid.uuid4()}-{i}"}).encode()
            answer = signed_post(server.url, creds, action_name, body, client=client).json()["Response"]
            codes.append(answer.get("Error", {}).get("Code", "Success"))
    return codes


def _within_one_second(burst: Callable[[], T]) -> T:
    """burst(), started at the top of a second (a fresh window), until one ends within that second: a slow
    machine's may not."""
    for _ in range(5):
        _start_of_next_second()
        second = int(time.time())
        result = burst()
        if int(time.time()) == second:
            return result
    pytest.fail("every burst spilled into the next second; the machine is too slow for this test")


def test_gateway_answers_request_limit_exceeded(limited_server):
    creds, other = limited_server.new_account("rl-a"), limited_server.new_account("rl-b")

    def limited_group_other_group_other_account() -> tuple[list[str], list[str], list[str]]:
        return (
            _codes(limited_server, creds, "HardeningProbe", 5),
            _codes(limited_server, creds, "HardeningProbeOther", 2),
            _codes(limited_server, other, "HardeningProbe", 2),
        )

    codes, other_group, other_account = _within_one_second(limited_group_other_group_other_account)
    assert codes == ["Success"] * 4 + ["RequestLimitExceeded"]
    assert other_group == ["Success"] * 2 and other_account == ["Success"] * 2
    accurate = _within_one_second(lambda: _codes(limited_server, creds, "HardeningProbeAccurate", 3))
    assert accurate == ["Success"] * 2 + ["RequestLimitExceeded"]
    _start_of_next_second()
    assert _codes(limited_server, creds, "HardeningProbe", 1) == ["Success"]


def test_limit_holds_under_concurrency(limited_server):
    """Eight threads for two seconds: successes never exceed the limit times the windows the run touched."""
    from concurrent.futures import ThreadPoolExecutor

    creds = limited_server.new_account("rl-c")
    codes: Counter[str] = Counter()

    def hammer(_: int) -> None:
        end = time.time() + 2
        with httpx.Client() as client:
            while time.time() < end:
                body = json.dumps({"Note": str(uuid.uuid4())}).encode()
                answer = signed_post(limited_server.url, creds, "HardeningProbe", body, client=client).json()
                codes[answer["Response"].get("Error", {}).get("Code", "Success")] += 1

    started = time.time()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(hammer, range(8)))
    windows = int(time.time()) - int(started) + 1
    assert set(codes) == {"Success", "RequestLimitExceeded"}
    assert codes["Success"] <= 4 * windows


def test_zero_disables_the_limit(tmp_path):
    runtime = Runtime(make_settings(tmp_path, rate_limit_qps=0))
    for server in _serve(runtime):
        creds = server.new_account("unlimited")
        _start_of_next_second()
        assert _codes(server, creds, "HardeningProbe", 12) == ["Success"] * 12
