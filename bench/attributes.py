"""Gender accuracy and age MAE on ../shared/data/attributes-utk (UTKFace 200x200 chips, labels from file
names), through the production path: YuNet -> mesh -> age/gender chips. Also the median per-face latency of
the mesh (two passes), the blendshapes, the age+gender networks and the quality measure. Prints one JSON line.

Usage: .venv/bin/python bench/attributes.py [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from prerequisites import require_data

from facecloud.config import Settings
from facecloud.vision.pipeline import Pipeline

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "attributes-utk"


def timed(samples: list[float], call, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = call(*args)
    samples.append((time.perf_counter() - started) * 1000)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="use only the first N labelled images")
    args = parser.parse_args()
    require_data(DATA / "labels.csv")
    pipeline = Pipeline.from_settings(Settings.from_env())
    analyzer = pipeline.analyzer
    with (DATA / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    if args.limit:
        rows = rows[: args.limit]
    correct, errors, missed = 0, [], 0
    by_band: dict[str, list[float]] = {}
    ms: dict[str, list[float]] = {"mesh": [], "blendshapes": [], "age_gender": [], "quality": []}
    for row in rows:
        bgr = cv2.imread(str(DATA / row["image"]), cv2.IMREAD_COLOR)
        faces = pipeline.detector.detect(bgr, max_faces=1, min_face_size=20)
        if not faces:
            missed += 1
            continue
        mesh = timed(ms["mesh"], analyzer.meshes, bgr, faces[:1])[0]
        timed(ms["blendshapes"], analyzer.landmarker.blendshapes, mesh)
        predicted = timed(ms["age_gender"], analyzer.age_gender.run, bgr, [mesh])[0]
        timed(ms["quality"], analyzer.quality, bgr, [mesh])
        correct += (predicted.male_probability >= 0.5) == (row["gender"] == "male")
        error = abs(predicted.age - int(row["age"]))
        errors.append(error)
        band = "0-12" if int(row["age"]) <= 12 else "13-60" if int(row["age"]) <= 60 else "61+"
        by_band.setdefault(band, []).append(error)
    faces = len(errors)
    report = {
        "bench": "attributes",
        "data": "attributes-utk",
        "images": len(rows),
        "faces": faces,
        "no_face_found": missed,
        "gender_accuracy_pct": round(100 * correct / faces, 2) if faces else None,
        "age_mae_years": round(float(np.mean(errors)), 2) if faces else None,
        "age_mae_by_true_age": {k: round(float(np.mean(v)), 2) for k, v in sorted(by_band.items())},
        "ms_per_face_median": {k: round(statistics.median(v), 2) for k, v in ms.items() if v},
        "threads": pipeline.threads,
    }
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
