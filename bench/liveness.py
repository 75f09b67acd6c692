"""Static liveness at the recommended threshold (Score >= 40 is live) on a folder of labelled photos.

Usage: .venv/bin/python bench/liveness.py FOLDER     (FOLDER holds live/ and spoof/ subfolders of photos)
Weights come from FACECLOUD_MODEL_DIR (Settings.resolved_model_dir). Each photo goes through the service's
own path: decode (EXIF rotation, Tencent's limits), YuNet detection of the largest face, the MiniFASNet pair.
A photo where no face is found counts as rejected (not live). Prints one JSON line:
  accuracy  share of photos classified right
  apcer     attack presentation classification error rate: share of spoof photos accepted as live
  bpcer     bona fide presentation classification error rate: share of live photos rejected
  p50_ms    median wall time per photo of detection + liveness (decoding excluded), one at a time, warm
  images    photos scored"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from facecloud.config import Settings
from facecloud.errors import ApiError
from facecloud.vision.image import decode_bytes
from facecloud.vision.liveness import RECOMMENDED_THRESHOLD
from facecloud.vision.pipeline import Pipeline

SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def photos(folder: Path) -> list[tuple[Path, bool]]:
    labelled = []
    for label, live in (("live", True), ("spoof", False)):
        sub = folder / label
        if not sub.is_dir():
            raise SystemExit(f"{sub} is missing: FOLDER must hold live/ and spoof/")
        labelled += [(p, live) for p in sorted(sub.iterdir()) if p.suffix.lower() in SUFFIXES]
    return labelled


def judge(pipeline: Pipeline, path: Path) -> tuple[bool, float, bool]:
    """(judged live, milliseconds, face found)."""
    image = decode_bytes(path.read_bytes())
    start = time.perf_counter()
    faces = pipeline.detect(image, max_faces=1, min_face_size=34)
    if not faces:
        return False, (time.perf_counter() - start) * 1000, False
    face = faces[0]
    result = pipeline.liveness.predict(image.bgr, (face.x, face.y, face.width, face.height))
    return result.score >= RECOMMENDED_THRESHOLD, (time.perf_counter() - start) * 1000, True


def main(folder: Path) -> None:
    pipeline = Pipeline.from_settings(Settings.from_env())
    pipeline.liveness.ensure_ready()
    labelled = photos(folder)
    if not labelled:
        raise SystemExit(f"no photos under {folder}/live or {folder}/spoof")
    judge(pipeline, labelled[0][0])  # warm-up: the detector loads on first use
    correct, accepted_spoofs, rejected_lives, times, no_face = 0, 0, 0, [], 0
    for path, live in labelled:
        try:
            judged_live, ms, found = judge(pipeline, path)
        except ApiError as error:  # undecodable or out-of-limits photo: rejected, like the service would
            print(f"{path}: {error.code}", file=sys.stderr)
            judged_live, ms, found = False, None, False
        no_face += not found
        if ms is not None:
            times.append(ms)
        correct += judged_live == live
        accepted_spoofs += judged_live and not live
        rejected_lives += live and not judged_live
    spoofs = sum(not live for _, live in labelled)
    lives = len(labelled) - spoofs
    print(
        json.dumps(
            {
                "accuracy": round(correct / len(labelled), 4),
                "apcer": round(accepted_spoofs / spoofs, 4) if spoofs else None,
                "bpcer": round(rejected_lives / lives, 4) if lives else None,
                "p50_ms": round(statistics.median(times), 2) if times else None,
                "images": len(labelled),
                "threshold": RECOMMENDED_THRESHOLD,
                "no_face": no_face,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
