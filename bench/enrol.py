"""Enrolment scaling: faces/s through the gallery's write path (database transaction, change log, index sync) with
4 writer threads spread over 1 account or over 4 accounts, on SQLite and on PostgreSQL. Embeddings are precomputed
(random unit vectors), so the models do not hide the database and index path. Prints one JSON line.

    .venv/bin/python bench/enrol.py --seconds 20 [--storage sqlite,postgres] [--postgres-url URL]

PostgreSQL: a fresh database of its own on the server at --postgres-url (default FACECLOUD_TEST_DATABASE_URL),
dropped afterwards. Each enrolment is a CreatePerson (one face) followed, every other person, by an AddFace."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, make_url, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from prerequisites import require_server  # noqa: E402

from facecloud.config import Settings  # noqa: E402
from facecloud.gallery import FaceInput  # noqa: E402
from facecloud.runtime import Runtime  # noqa: E402

WRITERS = 4


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, 128)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def enrol_for(runtime: Runtime, accounts: int, seconds: float) -> dict[str, object]:
    """WRITERS threads for `seconds`; writer i enrols into account i % accounts (its own group)."""
    gallery = runtime.gallery
    ids = [runtime.accounts.find(runtime.accounts.create(f"enrol-{n}").secret_id).id for n in range(accounts)]
    for writer in range(WRITERS):
        gallery.create_group(ids[writer % accounts], f"g{writer}", f"G{writer}", [], "", "3.0")
    vectors = unit_vectors(np.random.default_rng(0), 4096)
    faces = [0] * WRITERS
    latencies: list[list[float]] = [[] for _ in range(WRITERS)]
    stop_at = time.perf_counter() + seconds

    def write(writer: int) -> None:
        account, n = ids[writer % accounts], 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            person = f"w{writer}-p{n}"
            gallery.create_person(account, f"g{writer}", person, "P", 0, [], FaceInput(vectors[n % 4096]))
            faces[writer] += 1
            if n % 2:
                gallery.add_faces(account, person, [FaceInput(vectors[(n * 7) % 4096])])
                faces[writer] += 1
            latencies[writer].append(time.perf_counter() - started)
            n += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    every = [x for per in latencies for x in per]
    return {
        "accounts": accounts,
        "writers": WRITERS,
        "faces": sum(faces),
        "faces_per_s": round(sum(faces) / elapsed, 1),
        "enrolment_p50_ms": round(float(np.percentile(every, 50)) * 1000, 1),
        "enrolment_p99_ms": round(float(np.percentile(every, 99)) * 1000, 1),
        "index_consistent": gallery.index_report()["consistent"],
    }


def run(storage: str, accounts: int, seconds: float, postgres_url: str) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="facecloud-enrol-"))
    database = f"facecloud_enrol_{secrets.token_hex(4)}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT") if storage == "postgres" else None
    try:
        url = ""
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{database}"'))
            url = make_url(postgres_url).set(database=database).render_as_string(hide_password=False)
        runtime = Runtime(Settings(data_dir=data_dir, database_url=url))
        try:
            return {"storage": storage, **enrol_for(runtime, accounts, seconds)}
        finally:
            runtime.close()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--storage", default="sqlite,postgres")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("FACECLOUD_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    if "postgres" in args.storage.split(","):
        require_server(args.postgres_url, "--postgres-url or --storage sqlite")
    results = [
        run(storage, accounts, args.seconds, args.postgres_url)
        for storage in args.storage.split(",")
        for accounts in (1, 4)
    ]
    scaling = {
        storage: round(
            next(r["faces_per_s"] for r in results if r["storage"] == storage and r["accounts"] == 4)
            / max(next(r["faces_per_s"] for r in results if r["storage"] == storage and r["accounts"] == 1), 1e-9),
            2,
        )
        for storage in args.storage.split(",")
    }
    print(json.dumps({"bench": "enrol", "cpus": os.cpu_count(), "results": results, "speedup_4_vs_1": scaling}))


if __name__ == "__main__":
    main()
