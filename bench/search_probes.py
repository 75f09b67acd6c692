"""Search-effort sweep of the embedded index: one IvfRefine index built as the gallery builds it (bench/search.py's
LFW-shaped gallery, one group), searched with several probe counts (IVF lists scanned with fast-scan PQ codes) and
shortlists (candidates re-ranked exactly against the fp16 vectors); latency and recall against exact search.
Prints one JSON line.

    .venv/bin/python bench/search_probes.py --size 1000000 --probes 128,256,512 --shortlists 128,256,512"""

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

from search import FEATURES, ExactTop, Gallery, RealShape, require_features  # noqa: E402

from facecloud.gallery.index.layouts import trained_ivf  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--probes", default="128,256,512")
    parser.add_argument("--shortlists", default="256")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--features", type=Path, default=FEATURES)
    args = parser.parse_args()
    require_features(args.features)
    gallery = Gallery(RealShape(args.features), args.size, seed=0)
    queries = gallery.queries(args.queries)
    truth = ExactTop(queries, 10)
    chunks = []
    for first_face in gallery.chunks():
        faces = gallery.faces(first_face)
        truth.add(first_face, faces)
        chunks.append(faces.astype(np.float16))  # as a rebuild stages a large group
    faces16 = np.concatenate(chunks)
    del chunks
    started = time.perf_counter()
    index = trained_ivf(np.arange(1, args.size + 1, dtype=np.int64), faces16, 1)  # face pks are row + 1
    build_s = time.perf_counter() - started
    del faces16
    faiss.omp_set_num_threads(1)  # as the service searches
    rows = []
    for nprobe in (int(p) for p in args.probes.split(",")):
        for shortlist in (int(s) for s in args.shortlists.split(",")):
            index.candidates.nprobe, index.shortlist = nprobe, shortlist
            latencies, hits1, hits10 = [], 0, 0.0
            for query, expected in zip(queries, truth.pks, strict=True):
                t0 = time.perf_counter()
                _, ids = index.search(query[None], 10)
                latencies.append(time.perf_counter() - t0)
                got = ids[0].tolist()
                hits1 += got[0] == expected[0]
                hits10 += len(set(got) & set(expected.tolist())) / 10
            rows.append(
                {
                    "nprobe": nprobe,
                    "shortlist": shortlist,
                    "p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 2),
                    "p95_ms": round(float(np.percentile(latencies, 95)) * 1000, 2),
                    "recall_at_1": round(hits1 / args.queries, 4),
                    "recall_at_10": round(hits10 / args.queries, 4),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    report = {
        "bench": "search_probes",
        "faces": args.size,
        "nlist": index.nlist,
        "build_s": round(build_s, 1),
        "index_bytes": index.memory_bytes(),
    }
    print(json.dumps({**report, "results": rows}))


if __name__ == "__main__":
    main()
