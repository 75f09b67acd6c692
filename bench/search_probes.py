"""Probe-count sweep of the embedded index: one IVF index trained as the gallery trains it (bench/search.py's
LFW-shaped gallery, one group), searched with several nprobe values; latency and recall against exact search.
Prints one JSON line.

    .venv/bin/python bench/search_probes.py --size 1000000 --probes 170,256,384,512"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import faiss
import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from search import FACES_PER_PERSON, FEATURES, RealShape, exact_top, require_features  # noqa: E402

from facecloud.gallery.index.embedded import _trained_ivf  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--probes", default="170,256,384,512")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--features", type=Path, default=FEATURES)
    args = parser.parse_args()
    require_features(args.features)
    shape, rng = RealShape(args.features), np.random.default_rng(0)
    centres = shape.identities(rng, args.size // FACES_PER_PERSON)
    faces = shape.photos(rng, np.repeat(centres, FACES_PER_PERSON, axis=0))
    queries = shape.photos(rng, centres[rng.choice(len(centres), args.queries, replace=False)])
    truth = exact_top(faces, queries, 10)
    started = time.perf_counter()
    index = _trained_ivf(np.arange(1, args.size + 1, dtype=np.int64), faces, 1)  # face pks are row + 1
    train_s = time.perf_counter() - started
    faiss.omp_set_num_threads(1)  # as the service searches
    rows = []
    for nprobe in (int(p) for p in args.probes.split(",")):
        index.nprobe = nprobe
        latencies, hits1, hits10 = [], 0, 0.0
        for query, expected in zip(queries, truth, strict=True):
            t0 = time.perf_counter()
            _, ids = index.search(query[None], 10)
            latencies.append(time.perf_counter() - t0)
            got = ids[0].tolist()
            hits1 += got[0] == expected[0]
            hits10 += len(set(got) & set(expected.tolist())) / 10
        rows.append(
            {
                "nprobe": nprobe,
                "p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 2),
                "recall_at_1": round(hits1 / args.queries, 4),
                "recall_at_10": round(hits10 / args.queries, 4),
            }
        )
    report = {"bench": "search_probes", "faces": args.size, "nlist": index.nlist, "train_s": round(train_s, 1)}
    print(json.dumps({**report, "results": rows}))


if __name__ == "__main__":
    main()
