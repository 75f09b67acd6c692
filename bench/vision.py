"""Latency and throughput of the vision actions, over HTTP (official SDK against `facecloud serve`) and direct
(the same action handler called in-process, no HTTP/JSON/signature/metering), measured interleaved in one run.

Photos (../shared/data/detection-counts/images): 1 face = 004_A.jpg (3024x4032) resized to 480x640; 6 faces =
015_6.jpg (800x533) resized to 1280x853; CompareFace B = 005_A.jpg (the same person) resized to 480x640; "12 MP" =
004_A.jpg and 005_A.jpg resized to 2976x3968 (a phone photo within Tencent's 4000-px limit for JPEG).
Prints one JSON line and saves bench/out/vision.png.

Throughput, per server of `--throughput-workers` (default 1 and 2 workers) and per action (CompareFace 1+1,
DetectFace 1): `--clients` SDK clients in closed loop for `--seconds`; req/s, p50/p99, and the CPU the server's
processes used per call. "cores allow" = cores / compute per call, where compute per call is the CPU time per call
of the same action run in-process, back to back (measured in the same run, after the latency phase): the work a
saturated server cannot avoid. A call alone, after a pause, takes more CPU (cold caches: `compute_ms_cold`, the
interleaved calls of the latency phase), which would flatter the ratio.
On a shared machine other processes take cores too: `available_cores` counts the cores that were idle or used by
the server during the phase, and `ratio_available` compares with what those allow. Cores that all work at once
share caches and memory bandwidth, so a call then takes more CPU than alone: `all_cores_rps` is the action's rate
in-process with one thread per core calling it back to back (no server), and `ratio_all_cores` compares with it;
the gap between the ratios tells the hardware's share of the shortfall from the service's.
Usage: .venv/bin/python bench/vision.py [--repeat 30] [--workers 2] [--seconds 10] [--throughput-workers 1,2]"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps
from prerequisites import require_data
from serving import create_account, group_cpu_seconds, machine_cpu_seconds, start_server, stop_server

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "detection-counts" / "images"
OUT = Path(__file__).resolve().parent / "out"


def photo(name: str, size: tuple[int, int]) -> str:
    require_data(DATA / name)
    pil = ImageOps.exif_transpose(Image.open(DATA / name)).convert("RGB").resize(size, Image.Resampling.LANCZOS)
    ok, data = cv2.imencode(".jpg", np.asarray(pil)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def cases(actions: set[str]) -> dict[str, tuple[str, dict]]:
    one, one_b, six, large, large_b = (
        photo("004_A.jpg", (480, 640)),
        photo("005_A.jpg", (480, 640)),
        photo("015_6.jpg", (1280, 853)),
        photo("004_A.jpg", (2976, 3968)),
        photo("005_A.jpg", (2976, 3968)),
    )
    wanted = {
        "CompareFace 1+1": ("CompareFace", {"ImageA": one, "ImageB": one_b}),
        "CompareFace 12 MP": ("CompareFace", {"ImageA": large, "ImageB": large_b}),
        "DetectFace 1": ("DetectFace", {"Image": one}),
        "DetectFace 12 MP": ("DetectFace", {"Image": large}),
        "DetectFace 12 MP +quality": ("DetectFace", {"Image": large, "NeedQualityDetection": 1}),
        "DetectFace 6": ("DetectFace", {"Image": six, "MaxFaceNum": 6}),
        "DetectFace 1 +attr+quality": (
            "DetectFace",
            {"Image": one, "NeedFaceAttributes": 1, "NeedQualityDetection": 1},
        ),
        "AnalyzeFace 1": ("AnalyzeFace", {"Image": one}),
        "AnalyzeFace 6": ("AnalyzeFace", {"Image": six, "Mode": 0}),
    }
    return {label: case for label, case in wanted.items() if case[0] in actions}


_counter = iter(range(1 << 62))
_counter_lock = threading.Lock()


def unique(body: dict) -> dict:
    """The gateway refuses a byte-identical signed request within its replay window, and the SDK signs with
    one-second timestamps: an ignored extra field makes each request distinct."""
    with _counter_lock:
        return {**body, "BenchNonce": next(_counter)}


def sdk_client(endpoint: str, account: dict):  # type: ignore[no-untyped-def]
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.iai.v20200303 import iai_client

    profile = ClientProfile(httpProfile=HttpProfile(endpoint=endpoint, protocol="http", reqTimeout=60))
    return iai_client.IaiClient(
        credential.Credential(account["SecretId"], account["SecretKey"]), "ap-guangzhou", profile
    )


def direct_runner(data_dir: Path):  # type: ignore[no-untyped-def]
    """Call the registered handler in-process: the model work of an action, without the service around it."""
    from facecloud.config import Settings
    from facecloud.gateway.registry import ActionContext, registry
    from facecloud.runtime import Runtime

    runtime = Runtime(Settings.from_env(data_dir=data_dir))
    ctx = ActionContext(account_id=0, app_id=0, request_id="bench", language="en-US", runtime=runtime)
    actions = registry()

    def run(name: str, body: dict) -> None:
        spec = actions[name]
        spec.handler(spec.request.model_validate(body), ctx)

    return run


def back_to_back_ms(  # type: ignore[no-untyped-def]
    direct, name: str, body: dict, calls: int, clock: Callable[[], float] = time.process_time
) -> list[float]:
    """Milliseconds of `clock` (CPU by default) per call of the action run in-process with no pause between calls
    (warm caches), after one call not counted."""
    direct(name, body)
    spent = []
    for _ in range(calls):
        started = clock()
        direct(name, body)
        spent.append(1000 * (clock() - started))
    return spent


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
    }


def closed_loop(
    make_call: Callable[[], Callable[[], object]], threads: int, seconds: float
) -> tuple[list[float], float]:
    """`threads` threads, each calling its own make_call() back to back for `seconds`: ms per call, seconds taken."""
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    def loop() -> None:
        call = make_call()
        while time.monotonic() < stop:
            started = time.perf_counter()
            call()
            latencies.append(1000 * (time.perf_counter() - started))

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, time.monotonic() - started


def throughput(client_factory, name: str, body: dict, clients: int, seconds: float, server_pgid: int) -> dict:  # type: ignore[no-untyped-def]
    """Closed-loop load: req/s, latency p50/p99, server CPU per call, and the cores the server could have had."""

    def sdk_call() -> Callable[[], object]:
        client = client_factory()
        return lambda: client.call_json(name, unique(body))

    cpu_before, (busy_before, idle_before) = group_cpu_seconds(server_pgid), machine_cpu_seconds()
    latencies, elapsed = closed_loop(sdk_call, clients, seconds)
    server_cpu = group_cpu_seconds(server_pgid) - cpu_before
    busy, idle = machine_cpu_seconds()
    busy, idle = busy - busy_before, idle - idle_before
    ordered = sorted(latencies)
    return {
        "rps": round(len(latencies) / elapsed, 2),
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "server_cpu_ms_per_call": round(1000 * server_cpu / max(len(latencies), 1), 1),
        "available_cores": round((os.cpu_count() or 1) * (server_cpu + idle) / max(busy + idle, 1e-9), 2),
        "calls": len(latencies),
    }


def with_cores_allow(result: dict, compute_ms: float, in_process_rps: float) -> dict:
    cores = os.cpu_count() or 1
    allow = cores * 1000 / compute_ms
    allow_available = result["available_cores"] * 1000 / compute_ms
    return {
        **result,
        "compute_ms_per_call": round(compute_ms, 1),
        "cores_allow_rps": round(allow, 2),
        "ratio": round(result["rps"] / allow, 3),
        "available_cores_allow_rps": round(allow_available, 2),
        "ratio_available": round(result["rps"] / allow_available, 3),
        "all_cores_rps": round(in_process_rps, 2),
        "ratio_all_cores": round(result["rps"] / in_process_rps, 3),
    }


def all_cores_rps(direct, name: str, body: dict, seconds: float) -> float:  # type: ignore[no-untyped-def]
    """Calls/s of the action in-process, one thread per core calling it back to back for `seconds`."""
    calls, elapsed = closed_loop(lambda: partial(direct, name, body), os.cpu_count() or 1, seconds)
    return len(calls) / elapsed


THROUGHPUT_CASES = ("CompareFace 1+1", "DetectFace 1")


def measure_throughput(data_dir: Path, workers: int, args: argparse.Namespace, latency: dict[str, dict]) -> dict:
    from facecloud.gateway.registry import registry

    server, endpoint = start_server(data_dir, workers, {"FACECLOUD_RATE_LIMIT_QPS": "100000"})
    try:
        account = create_account(data_dir)
        client = sdk_client(endpoint, account)
        results = {}
        for label in THROUGHPUT_CASES:
            name, body = cases(set(registry()))[label]
            for _ in range(3 * workers):  # warm-up: model loading in every worker
                client.call_json(name, unique(body))
            result = throughput(
                lambda: sdk_client(endpoint, account), name, body, args.clients, args.seconds, server.pid
            )
            results[label] = with_cores_allow(
                result, latency[label]["compute_ms_per_call"], latency[label]["all_cores_rps"]
            )
        return results
    finally:
        stop_server(server)


def plot(results: dict, path: Path) -> None:
    labels = list(results)
    width, bar_h, left = 900, 26, 260
    canvas = np.full((60 + len(labels) * 2 * bar_h + 20, width, 3), 255, np.uint8)
    top = max(max(r["http"]["p50"], r["direct"]["p50"]) for r in results.values())
    cv2.putText(
        canvas,
        "p50 latency (ms): blue = HTTP, orange = direct",
        (10, 30),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.6,
        (0, 0, 0),
        1,
    )
    y = 50
    for label in labels:
        for kind, colour in (("http", (200, 120, 40)), ("direct", (40, 140, 240))):
            value = results[label][kind]["p50"]
            length = int((width - left - 80) * value / top)
            cv2.rectangle(canvas, (left, y), (left + length, y + bar_h - 6), colour, -1)
            cv2.putText(
                canvas,
                f"{value:.0f}",
                (left + length + 5, y + bar_h - 10),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45,
                (0, 0, 0),
                1,
            )
            if kind == "http":
                cv2.putText(canvas, label, (10, y + bar_h - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
            y += bar_h
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), canvas)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--throughput-workers", default="1,2")
    args = parser.parse_args()
    from facecloud.gateway.registry import registry

    with tempfile.TemporaryDirectory(prefix="facecloud-bench-") as tmp:
        data_dir = Path(tmp)
        server, endpoint = start_server(data_dir / "server", args.workers, {"FACECLOUD_RATE_LIMIT_QPS": "100000"})
        try:
            account = create_account(data_dir / "server")
            client = sdk_client(endpoint, account)
            direct = direct_runner(data_dir / "direct")
            results = {}
            for label, (name, body) in cases(set(registry())).items():
                for _ in range(3 * args.workers):  # warm-up: model loading in every worker (no affinity)
                    client.call_json(name, unique(body))
                direct(name, body)
                http_ms, direct_ms, direct_cpu_ms = [], [], []
                for _ in range(args.repeat):  # interleaved, so both see the same machine load
                    started = time.perf_counter()
                    client.call_json(name, unique(body))
                    http_ms.append(1000 * (time.perf_counter() - started))
                    started, cpu_started = time.perf_counter(), time.process_time()
                    direct(name, body)
                    direct_ms.append(1000 * (time.perf_counter() - started))
                    direct_cpu_ms.append(1000 * (time.process_time() - cpu_started))
                http, model = percentiles(http_ms), percentiles(direct_ms)
                results[label] = {
                    "http": http,
                    "direct": model,
                    "overhead_ratio_p50": round((http["p50"] - model["p50"]) / http["p50"], 3),
                    "compute_ms_per_call": round(
                        statistics.median(back_to_back_ms(direct, name, body, args.repeat)), 1
                    ),
                    "compute_ms_cold": round(statistics.median(direct_cpu_ms), 1),
                }
                if label in THROUGHPUT_CASES:
                    results[label]["all_cores_rps"] = round(all_cores_rps(direct, name, body, args.seconds / 2), 2)
        finally:
            stop_server(server)
        throughputs = {
            f"workers_{workers}": measure_throughput(data_dir / f"tp-{workers}", workers, args, results)
            for workers in (int(w) for w in args.throughput_workers.split(",") if w)
        }
    plot(results, OUT / "vision.png")
    print(
        json.dumps(
            {
                "bench": "vision",
                "cpu_count": os.cpu_count(),
                "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
                "workers": args.workers,
                "repeat": args.repeat,
                "photos": {
                    "1 face": "detection-counts 004_A.jpg -> 480x640",
                    "compare B": "detection-counts 005_A.jpg -> 480x640",
                    "6 faces": "detection-counts 015_6.jpg -> 1280x853",
                    "12 MP": "detection-counts 004_A.jpg, 005_A.jpg -> 2976x3968",
                },
                "latency_ms": results,
                "throughput": {**throughputs, "clients": args.clients, "seconds": args.seconds},
                "plot": str(OUT / "vision.png"),
            }
        )
    )


if __name__ == "__main__":
    main()
