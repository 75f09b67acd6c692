"""CompareFace per FaceModelVersion and CompareMaskFace: latency over HTTP (official SDK against `facecloud
serve`), the same photos as bench/vision.py's "CompareFace 1+1" (detection-counts 004_A.jpg and 005_A.jpg at
480x640). Decides the default version (CompareFace's budget: p50 <= 100 ms over HTTP on 2 cores).
Prints one JSON line. Usage: .venv/bin/python bench/versions_latency.py [--repeat 30] [--workers 2]"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from serving import create_account, start_server, stop_server
from vision import percentiles, photo, sdk_client, unique


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    a, b = photo("004_A.jpg", (480, 640)), photo("005_A.jpg", (480, 640))
    cases = {
        "CompareFace 2.0": ("CompareFace", {"ImageA": a, "ImageB": b, "FaceModelVersion": "2.0"}),
        "CompareFace 3.0": ("CompareFace", {"ImageA": a, "ImageB": b, "FaceModelVersion": "3.0"}),
        "CompareMaskFace": ("CompareMaskFace", {"ImageA": a, "ImageB": b}),
    }
    import time

    with tempfile.TemporaryDirectory(prefix="facecloud-bench-") as tmp:
        server, endpoint = start_server(Path(tmp) / "server", args.workers, {"FACECLOUD_RATE_LIMIT_QPS": "100000"})
        try:
            client = sdk_client(endpoint, create_account(Path(tmp) / "server"))
            for name, body in cases.values():  # warm-up: every worker loads every model
                for _ in range(3 * args.workers):
                    client.call_json(name, unique(body))
            samples: dict[str, list[float]] = {label: [] for label in cases}
            scores: dict[str, float] = {}
            for _ in range(args.repeat):  # interleaved: every case sees the same machine load
                for label, (name, body) in cases.items():
                    started = time.perf_counter()
                    answer = client.call_json(name, unique(body))
                    samples[label].append(1000 * (time.perf_counter() - started))
                    scores[label] = answer["Response"]["Score"]
        finally:
            stop_server(server)
    print(
        json.dumps(
            {
                "bench": "versions_latency",
                "workers": args.workers,
                "repeat": args.repeat,
                "http_ms": {label: percentiles(values) for label, values in samples.items()},
                "score_same_person": scores,
            }
        )
    )


if __name__ == "__main__":
    main()
