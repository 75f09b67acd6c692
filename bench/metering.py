"""Metering throughput and latency on the embedded default database (SQLite, WAL, synchronous=FULL).

Measures, on a fresh data folder:
- throughput: billable calls per second recorded durably (committed before record_call returns) by C concurrent
  callers, each call its own RequestId, through the group-commit writer;
- overhead: what billing adds to one call of a cheap action, i.e. ensure_can_bill + record_call, for a lone
  caller (every call pays its own commit and fsync) and under concurrent load.

Prints one JSON line.

    .venv/bin/python bench/metering.py [--seconds 5] [--callers 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from facecloud.billing.models import UsageEntry
from facecloud.config import Settings
from facecloud.runtime import Runtime


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)  # noqa: E731
    return {"p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3)}


def _billable_call(runtime: Runtime, account_id: int) -> float:
    started = time.perf_counter()
    runtime.billing.ensure_can_bill(account_id, "detect")
    runtime.billing.record_call(account_id, "detect", "DetectFace", str(uuid.uuid4()))
    return time.perf_counter() - started


def _load(runtime: Runtime, accounts: list[int], callers: int, seconds: float) -> tuple[int, list[float]]:
    stop = threading.Event()
    counts = [0] * callers
    latencies: list[list[float]] = [[] for _ in range(callers)]

    def caller(index: int) -> None:
        account_id = accounts[index % len(accounts)]
        while not stop.is_set():
            latencies[index].append(_billable_call(runtime, account_id))
            counts[index] += 1

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts), [x for per in latencies for x in per]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--serial-calls", type=int, default=1000)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a new temporary folder")
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="facecloud-bench-"))
    runtime = Runtime(Settings(data_dir=data_dir))
    accounts = [runtime.accounts.find(str(runtime.accounts.create(f"bench-{i}").app_id)).id
                for i in range(args.accounts)]
    for _ in range(50):  # warm up: connections, the writer thread, the free packs
        _billable_call(runtime, accounts[0])

    serial = [_billable_call(runtime, accounts[0]) for _ in range(args.serial_calls)]
    started = time.perf_counter()
    recorded, loaded = _load(runtime, accounts, args.callers, args.seconds)
    elapsed = time.perf_counter() - started
    with runtime.db.session() as s:
        in_ledger = s.scalar(select(func.count()).select_from(UsageEntry))
    runtime.close()
    print(json.dumps({
        "bench": "metering",
        "database": "sqlite (WAL, synchronous=FULL)",
        "cpus": os.cpu_count(),
        "callers": args.callers,
        "seconds": round(elapsed, 2),
        "recorded_calls": recorded,
        "calls_per_s": round(recorded / elapsed),
        "ledger_rows": in_ledger,
        "overhead_lone_caller": _percentiles(serial),
        "overhead_under_load": _percentiles(loaded),
    }))


if __name__ == "__main__":
    main()
