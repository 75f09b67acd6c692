"""CPU time of CompareFace's model work per FaceModelVersion, in process: detection plus the version's embedding
of the two bench photos (detection-counts 004_A.jpg and 005_A.jpg at 480x640, as bench/vision.py), one inference
thread, `time.process_time` over 10 repetitions. CPU time is far less sensitive than latency to other work on a
shared machine. Prints one JSON line. Usage: .venv/bin/python bench/versions_cpu.py"""

from __future__ import annotations

import base64
import json
import time

from vision import photo

from facecloud.config import Settings
from facecloud.vision.image import decode_bytes
from facecloud.vision.pipeline import Pipeline
from facecloud.vision.versions import VERSIONS

REPEAT = 10


def main() -> None:
    pipeline = Pipeline(Settings(inference_threads=1))
    images = [decode_bytes(base64.b64decode(photo(name, (480, 640)))) for name in ("004_A.jpg", "005_A.jpg")]

    def compare(version: str) -> None:
        for img in images:
            face = pipeline.detect(img, max_faces=120, min_face_size=34)[0]
            pipeline.models.embed(img.bgr, face, version)

    cpu_ms = {}
    for version in VERSIONS:
        compare(version)  # warm-up: models load
        started = time.process_time()
        for _ in range(REPEAT):
            compare(version)
        cpu_ms[version] = round((time.process_time() - started) / REPEAT * 1000, 1)
    print(json.dumps({"bench": "versions_cpu", "cpu_ms_per_compare": cpu_ms, "repeat": REPEAT}))


if __name__ == "__main__":
    main()
