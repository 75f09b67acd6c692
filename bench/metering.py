"""Metering throughput and latency on the embedded default database (SQLite, WAL, synchronous=FULL).

Measures, on a fresh data folder:
- throughput: billable calls per second recorded durably (committed before record_call returns) by C
  concurrent callers, each call its own RequestId, through the group-commit writer; at several levels of C,
  since a batch holds the calls that queued during the previous commit, so throughput grows with concurrency;
- overhead: what billing adds to one call of a cheap action, i.e. ensure_can_bill + record_call, for a lone
  caller (every call pays its own commit and fsync) and under each concurrent load;
- the disk's own fsync latency (the floor of a lone caller's overhead with synchronous=FULL).
Pass --data-dir on a tmpfs (/dev/shm/...) to see the software overhead without the disk (not durable there).

Prints one JSON line.

    .venv/bin/python bench/metering.py [--seconds 3] [--callers 16 64 256] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    return {
        "p50_ms": pick(0.5),
        "p90_ms": pick(0.9),
        "p99_ms": pick(0.99),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


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
    parser.add_argument("--seconds", type=float, default=3.0, help="per concurrency level")
    parser.add_argument("--callers", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--serial-calls", type=int, default=1000)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a new temporary folder")
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="facecloud-bench-"))
    runtime = Runtime(Settings(data_dir=data_dir))
    accounts = [
        runtime.accounts.find(str(runtime.accounts.create(f"bench-{i}").app_id)).id for i in range(args.accounts)
    ]
    for _ in range(50):  # warm up: connections, the writer thread, the free packs
        _billable_call(runtime, accounts[0])

    serial = [_billable_call(runtime, accounts[0]) for _ in range(args.serial_calls)]
    levels = []
    for callers in args.callers:
        started, cpu_started = time.perf_counter(), time.process_time()
        recorded, loaded = _load(runtime, accounts, callers, args.seconds)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        levels.append(
            {
                "callers": callers,
                # CPU time of this process (callers and writer) per recorded call.
                "process_cpu_us_per_call": round(cpu / recorded * 1e6, 1),
                "recorded_calls": recorded,
                "calls_per_s": round(recorded / elapsed),
                "overhead": _percentiles(loaded),
            }
        )
    with runtime.db.session() as s:
        in_ledger = s.scalar(select(func.count()).select_from(UsageEntry))
    runtime.close()
    fsync = _fsync_latencies(data_dir)
    if args.data_dir is None:
        shutil.rmtree(data_dir)
    print(
        json.dumps(
            {
                "bench": "metering",
                "database": "sqlite (WAL, synchronous=FULL)",
                "data_dir": str(data_dir),
                "cpus": os.cpu_count(),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "disk_fsync": _percentiles(fsync),
                "overhead_lone_caller": _percentiles(serial),
                "throughput": levels,
                "best_calls_per_s": max(level["calls_per_s"] for level in levels),
                "ledger_rows": in_ledger,
                "ledger_rows_expected": 50 + args.serial_calls + sum(level["recorded_calls"] for level in levels),
            }
        )
    )


def _fsync_latencies(folder: Path, count: int = 200) -> list[float]:
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    samples = []
    try:
        for _ in range(count):
            os.write(fd, b"x" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            samples.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return samples


if __name__ == "__main__":
    main()
