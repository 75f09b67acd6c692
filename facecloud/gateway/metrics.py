"""Prometheus metrics: requests by action and code, latency histograms. Multi-process safe when PROMETHEUS_MULTIPROC_DIR
is set (the CLI sets it for several workers)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("facecloud_requests_total", "API requests by action and result code", ["action", "code"])
LATENCY = Histogram(
    "facecloud_request_seconds",
    "API request latency by action",
    ["action"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)


def observe(action: str, code: str, seconds: float) -> None:
    REQUESTS.labels(action, code).inc()
    LATENCY.labels(action).observe(seconds)


def exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
