"""Upgrade speed: faces re-embedded per second by an UpgradeGroupFaceModelVersion job ("2.0" -> "3.0"), in
process on a fresh SQLite gallery of N lfw-dev faces (one per person, enrolled at 2.0 with their crops, as
CreatePerson does), the job driven by the worker's own step (`VersionJobs.run_once`) with the default batch.
Also the latency of a search of the group while the job runs. Prints one JSON line.
Usage: .venv/bin/python bench/upgrade_speed.py [--faces 200]"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from prerequisites import require_data

from facecloud.config import Settings
from facecloud.gallery.records import FaceInput
from facecloud.gallery.versions import BATCH, VersionJobs
from facecloud.runtime import Runtime
from facecloud.vision.image import decode_bytes
from facecloud.vision.versions import VERSIONS, FaceCrops

LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-dev" / "lfw-deepfunneled"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", type=int, default=200)
    args = parser.parse_args()
    require_data(LFW)
    with tempfile.TemporaryDirectory(prefix="facecloud-upgrade-") as tmp:
        runtime = Runtime(Settings(data_dir=Path(tmp)))
        account = runtime.accounts.find(runtime.accounts.create("bench").secret_id).id
        gallery, models = runtime.gallery, runtime.vision.models
        gallery.create_group(account, "g", "g", [], "", "2.0")
        probes = []
        for number, person in enumerate(sorted(p for p in LFW.iterdir() if p.is_dir())[: args.faces]):
            img = decode_bytes(sorted(person.glob("*.jpg"))[0].read_bytes())
            faces = runtime.vision.detector.detect(img.bgr, max_faces=1)
            if not faces:
                continue
            crops = models.crops(img.bgr, faces[0])
            face = FaceInput(models.embed_crops(crops, "2.0"), crops=crops.to_png())
            gallery.create_person(account, "g", f"p{number}", person.name, 0, [], face)
            probes.append(face.embedding)
        models.embed_crops(crops, "3.0")  # warm-up: the ResNet graph is built on first use
        jobs = VersionJobs(gallery, lambda c, v: [models.embed_crops(FaceCrops.from_png(*p), v) for p in c], VERSIONS)
        job_id = jobs.start(account, "g", "3.0")
        searching, search_ms = threading.Event(), []

        def search_meanwhile() -> None:
            while not searching.is_set():
                started = time.perf_counter()
                gallery.search(account, ["g"], "face", np.stack(probes[:1]), 1, by_group=False)
                search_ms.append(1000 * (time.perf_counter() - started))
                time.sleep(0.05)

        searcher = threading.Thread(target=search_meanwhile)
        searcher.start()
        started = time.perf_counter()
        while jobs.run_once():
            pass
        seconds = time.perf_counter() - started
        searching.set()
        searcher.join()
        info = jobs.result(account, job_id)
        runtime.close()
    print(
        json.dumps(
            {
                "bench": "upgrade_speed",
                "faces": len(probes),
                "batch": BATCH,
                "seconds": round(seconds, 2),
                "faces_per_s": round(len(probes) / seconds, 2),
                "status": info.status,
                "failed_faces": len(info.failed_face_ids),
                "searches_during_job": len(search_ms),
                "search_ms_median_during_job": round(statistics.median(search_ms), 2) if search_ms else None,
            }
        )
    )


if __name__ == "__main__":
    main()
