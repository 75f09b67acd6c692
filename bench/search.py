"""Search benchmark of the gallery's vector indexes: latency, recall against exact search, memory, rebuild time.

Usage: .venv/bin/python bench/search.py [--sizes 10000,100000,1000000] [--milvus-sizes 10000,100000]
[--queries 300] [--milvus-uri http://127.0.0.1:19530 (a Milvus server; default: milvus-lite)]
[--with-milvus-server (start a real Milvus server for --milvus-sizes, as the tests do)]

Galleries are synthetic but shaped like real SFace embeddings: identity centres and per-photo deviations are drawn
from Gaussians whose covariances are fitted on the LFW embeddings (bench/out/lfw_dev_features.npz, written by
bench/fit_calibration.py: run it first), 5 photos per identity; queries are further photos of enrolled identities.
Each gallery is written to a fresh SQLite database (one group), the index is rebuilt from it through
Gallery.rebuild() (timed: reading the rows, training, adding, saving), and searched through the index the service
uses (top-10). Recall@k = share of queries whose exact top-k (float32 inner products) face ids appear in the index's
top-k (recall@1: the same best face). Galleries are generated, written and scored in chunks of CHUNK faces (each
chunk from its own seed, so it can be regenerated), never as one array: a 10M-face run holds the index, one chunk
and the running exact top-10 of each query. Prints one JSON line and saves bench/out/search.png."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from prerequisites import require_output
from sqlalchemy import insert

from facecloud.config import Settings
from facecloud.gallery.lfw import from_vision_features
from facecloud.gallery.models import FaceRow, GroupRow, MembershipRow, PersonRow, utcnow
from facecloud.runtime import Runtime

OUT = Path(__file__).resolve().parent / "out"
FEATURES = OUT / "lfw_dev_features.npz"  # written by bench/fit_calibration.py
FACES_PER_PERSON = 5
CHUNK = 200_000  # faces generated, written and scored at a time (a multiple of FACES_PER_PERSON)


class RealShape:
    """Identity centres ~ N(mean, between-identity covariance); photos ~ centre + N(0, within covariance)."""

    def __init__(self, features: Path) -> None:
        embeddings, labels, _ = from_vision_features(features)
        centres = np.stack([embeddings[labels == i].mean(0) for i in np.unique(labels)])
        counts = np.bincount(labels)
        multi = np.isin(labels, np.flatnonzero(counts > 1))
        deviations = embeddings[multi] - centres[labels[multi]]
        self.mean = centres.mean(0)
        self.between = np.linalg.cholesky(np.cov(centres.T) + 1e-6 * np.eye(128))
        self.within = np.linalg.cholesky(np.cov(deviations.T) * 1.25 + 1e-6 * np.eye(128))

    def identities(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.mean + rng.standard_normal((n, 128)) @ self.between.T

    def photos(self, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
        photos = centres + rng.standard_normal(centres.shape) @ self.within.T
        return (photos / np.linalg.norm(photos, axis=1, keepdims=True)).astype(np.float32)


def create_group(runtime: Runtime) -> tuple[int, int]:
    """One account with one group; returns (account id, group pk)."""
    account_id = runtime.accounts.find(runtime.accounts.create("bench").secret_id).id
    now = utcnow()
    with runtime.db.session() as session:
        group = GroupRow(
            account_id=account_id,
            group_id="bench",
            name="bench",
            tag="",
            ex_descriptions=[],
            face_model_version="3.0",
            created_at=now,
            updated_at=now,
        )
        session.add(group)
        session.flush()
        return account_id, group.id


def fill_chunk(runtime: Runtime, account_id: int, group_pk: int, first_face: int, faces: np.ndarray) -> None:
    """Persons of FACES_PER_PERSON faces each, in the group; face pk = first_face + row + 1."""
    now = utcnow()
    first_person = first_face // FACES_PER_PERSON
    persons = range(first_person, first_person + len(faces) // FACES_PER_PERSON)
    with runtime.db.session() as session:
        session.execute(
            insert(PersonRow),
            [
                {
                    "id": p + 1,
                    "account_id": account_id,
                    "person_id": f"p{p}",
                    "name": "p",
                    "gender": 0,
                    "feature": None,
                    "created_at": now,
                }
                for p in persons
            ],
        )
        session.execute(
            insert(MembershipRow),
            [{"group_pk": group_pk, "person_pk": p + 1, "ex_descriptions": [], "created_at": now} for p in persons],
        )
        session.execute(
            insert(FaceRow),
            [
                {
                    "id": first_face + row + 1,
                    "face_id": str(first_face + row + 1),
                    "person_pk": (first_face + row) // FACES_PER_PERSON + 1,
                    "embedding": face.tobytes(),
                    "x": 0,
                    "y": 0,
                    "width": 0,
                    "height": 0,
                    "created_at": now,
                }
                for row, face in enumerate(faces)
            ],
        )


class Gallery:
    """A synthetic gallery of `size` faces in chunks of CHUNK, each regenerated from (seed, chunk number)."""

    def __init__(self, shape: RealShape, size: int, seed: int) -> None:
        self.shape, self.size, self.seed = shape, size, seed

    def chunks(self) -> range:
        return range(0, self.size, CHUNK)

    def _centres(self, rng: np.random.Generator, first_face: int) -> np.ndarray:
        return self.shape.identities(rng, (min(self.size, first_face + CHUNK) - first_face) // FACES_PER_PERSON)

    def faces(self, first_face: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, first_face])
        centres = self._centres(rng, first_face)
        return self.shape.photos(rng, np.repeat(centres, FACES_PER_PERSON, axis=0))

    def queries(self, count: int) -> np.ndarray:
        """Further photos of `count` enrolled identities."""
        rng = np.random.default_rng([self.seed, self.size, count])
        identities = np.sort(rng.choice(self.size // FACES_PER_PERSON, count, replace=False))
        centres = []
        for first_face in self.chunks():
            first, stop = first_face // FACES_PER_PERSON, (first_face + CHUNK) // FACES_PER_PERSON
            wanted = identities[(identities >= first) & (identities < stop)] - first
            if len(wanted):
                centres.append(self._centres(np.random.default_rng([self.seed, first_face]), first_face)[wanted])
        return self.shape.photos(rng, np.concatenate(centres))


class ExactTop:
    """The running exact top-k face pks of each query over the chunks seen."""

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self.queries, self.k = queries, k
        self.scores = np.full((len(queries), 0), -np.inf, np.float32)
        self.pks = np.zeros((len(queries), 0), np.int64)

    def add(self, first_face: int, faces: np.ndarray) -> None:
        scores = np.concatenate([self.scores, self.queries @ faces.T], axis=1)
        chunk_pks = np.broadcast_to(np.arange(len(faces)) + first_face + 1, (len(self.queries), len(faces)))
        pks = np.concatenate([self.pks, chunk_pks], axis=1)
        top = np.argpartition(-scores, self.k, axis=1)[:, : self.k]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, 1)
        self.scores, self.pks = np.take_along_axis(scores, top, 1), np.take_along_axis(pks, top, 1)


def exact_top(faces: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Face pks (row + 1) of the exact top-k of each query."""
    top = ExactTop(queries, k)
    for start in range(0, len(faces), CHUNK):
        top.add(start, faces[start : start + CHUNK])
    return top.pks


def progress(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def directory_bytes(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def max_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(backend: str, size: int, shape: RealShape, queries_n: int, seed: int = 0, milvus_uri: str = "") -> dict:
    gallery_spec = Gallery(shape, size, seed)
    queries = gallery_spec.queries(queries_n)
    truth = ExactTop(queries, 10)
    data_dir = Path(tempfile.mkdtemp(prefix="facecloud-bench-"))
    try:
        server = {"milvus_uri": milvus_uri, "milvus_collection_prefix": f"bench{size}_{seed}_"} if milvus_uri else {}
        runtime = Runtime(Settings(data_dir=data_dir, vector_backend=backend, **server))
        account_id, group_pk = create_group(runtime)
        gallery = runtime.gallery  # (its first sync builds the index of the empty group: the rebuild below is timed)
        fill_s = 0.0
        for first_face in gallery_spec.chunks():
            faces = gallery_spec.faces(first_face)
            truth.add(first_face, faces)
            started = time.perf_counter()
            fill_chunk(runtime, account_id, group_pk, first_face, faces)
            fill_s += time.perf_counter() - started
            progress(f"{size} faces: {first_face + len(faces)} written, db fill {fill_s:.0f} s")
        del faces
        rss_before_rebuild = max_rss_mb()
        started = time.perf_counter()
        gallery.rebuild()
        rebuild_s = time.perf_counter() - started
        progress(f"{size} faces: rebuilt in {rebuild_s:.0f} s, index {gallery.index.memory_bytes() / 2**30:.2f} GiB")
        index = gallery.index
        # The fill and the rebuild leave gigabytes of dirty pages (the database, the saved index): their writeback
        # would run during the timed searches (10M: p50 70 ms without this flush, 38 ms with it), so flush them first.
        os.sync()
        latencies, hits1, hits10 = [], 0, 0.0
        for query, expected in zip(queries, truth.pks, strict=True):
            t0 = time.perf_counter()
            found = index.search("face", account_id, [group_pk], query[None], 10)[0][group_pk]
            latencies.append(time.perf_counter() - t0)
            got = [h.item_pk for h in found]
            hits1 += bool(got) and got[0] == expected[0]
            hits10 += len(set(got) & set(expected.tolist())) / 10
        result = {
            "backend": "milvus-server" if milvus_uri else ("milvus-lite" if backend == "milvus" else backend),
            "faces": size,
            "queries": queries_n,
            "p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 3),
            "p95_ms": round(float(np.percentile(latencies, 95)) * 1000, 3),
            "recall_at_1": round(hits1 / queries_n, 4),
            "recall_at_10": round(hits10 / queries_n, 4),
            "rebuild_from_db_s": round(rebuild_s, 1),
            "db_fill_s": round(fill_s, 1),
        }
        if backend == "embedded":
            result["index_bytes"] = index.memory_bytes()
            result["index_mb_per_million"] = round(index.memory_bytes() / size * 1e6 / 2**20, 1)
            result["index_disk_bytes"] = directory_bytes(data_dir / "gallery-index")
            result["layout"] = {group.kind: type(group.index).__name__ for group in index._groups.values()}
        result["process_max_rss_mb_before_rebuild"] = rss_before_rebuild
        result["process_max_rss_mb"] = max_rss_mb()
        gallery.close()
        runtime.close()
        return result
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def plot(results: list[dict], path: Path) -> None:
    """Latency (p50, log scale) and recall@1 against gallery size, one line per backend (drawn with Pillow)."""
    from PIL import Image, ImageDraw

    width, height, margin = 900, 420, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    colours = {"embedded": (31, 119, 180), "milvus-lite": (214, 39, 40), "milvus-server": (44, 160, 44)}
    sizes = sorted({r["faces"] for r in results})
    panels = (("p50 search latency, ms (log)", "p50_ms", True), ("recall@1 vs exact", "recall_at_1", False))
    for number, (title, field, log) in enumerate(panels):
        left, right = margin + number * width // 2, (number + 1) * width // 2 - 20
        top, bottom = 40, height - margin
        draw.rectangle((left, top, right, bottom), outline="black")
        draw.text((left, 15), title, fill="black")
        values = [r[field] for r in results]
        low, high = (np.log10(min(values)) - 0.2, np.log10(max(values)) + 0.2) if log else (0.9, 1.005)

        def x_of(size: int, left: int = left, right: int = right) -> float:
            span = np.log10(sizes[-1] / sizes[0]) or 1.0
            return left + 20 + (right - left - 40) * np.log10(size / sizes[0]) / span

        def y_of(
            value: float, low: float = low, high: float = high, log: bool = log, top: int = top, bottom: int = bottom
        ) -> float:
            v = np.log10(value) if log else value
            return bottom - (bottom - top) * (v - low) / (high - low)

        for size in sizes:
            draw.text((x_of(size) - 15, bottom + 8), f"{size:,}", fill="black")
        for backend, colour in colours.items():
            points = [(x_of(r["faces"]), y_of(r[field])) for r in results if r["backend"] == backend]
            if points:
                draw.line(points, fill=colour, width=2)
                for px, py in points:
                    draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colour)
                draw.text((points[-1][0] - 60, points[-1][1] - 14), backend, fill=colour)
        for r in results:
            draw.text((x_of(r["faces"]) + 5, y_of(r[field]) + 3), f"{r[field]:g}", fill=colours[r["backend"]])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def require_features(path: Path) -> None:
    option = "" if path == FEATURES else f" --features {path}"
    require_output(path, f".venv/bin/python bench/fit_calibration.py{option}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--milvus-sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--features", type=Path, default=FEATURES)
    parser.add_argument("--milvus-uri", default="", help="a Milvus server for --milvus-sizes (default: milvus-lite)")
    parser.add_argument("--with-milvus-server", action="store_true", help="start a Milvus server for --milvus-sizes")
    args = parser.parse_args()
    if args.with_milvus_server:
        with milvus_server() as uri:
            args.milvus_uri = uri
            run(args)
    else:
        run(args)


@contextmanager
def milvus_server() -> Iterator[str]:
    """A real Milvus standalone server (the `milvus` package, as the tests start it) for the run; removed after."""
    from facecloud.gallery.milvus_server import spawned

    data_dir = Path(tempfile.mkdtemp(prefix="facecloud-bench-milvus-"))
    try:
        with spawned(data_dir) as uri:
            yield uri
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    require_features(args.features)
    shape = RealShape(args.features)
    results = []
    for backend, sizes in (("embedded", args.sizes), ("milvus", args.milvus_sizes)):
        for size in [int(s) for s in sizes.split(",") if s]:
            results.append(measure(backend, size, shape, args.queries, milvus_uri=args.milvus_uri))
    plot(results, OUT / "search.png")
    png = str(OUT / "search.png")
    print(
        json.dumps(
            {
                "bench": "search",
                "machine": platform.processor() or platform.machine(),
                "results": results,
                "png": png,
            }
        )
    )


if __name__ == "__main__":
    main()
