"""Emotion (face-api's 7-class expression net) against the one expression label facecloud can check here: the
MediaPipe blendshape smile. No labelled emotion data is in ../shared/data, so this measures agreement, not
accuracy: on lfw-dev images of folds 4-5 (and the UTK chips), how often the net answers "happy" for a broad
smile (Smile >= 60) and something else for a face without one (Smile <= 10). Also the ms per face.
Prints one JSON line. Usage: .venv/bin/python bench/emotion.py [--limit N]"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from prerequisites import require_data

from facecloud.config import Settings
from facecloud.vision.evaluation import read_pairs
from facecloud.vision.image import decode_bytes
from facecloud.vision.pipeline import Pipeline

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BROAD, NONE = 60, 10


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=600)
    args = parser.parse_args()
    require_data(SHARED / "lfw-dev" / "pairs.csv", SHARED / "attributes-utk" / "images")
    pairs = read_pairs(SHARED / "lfw-dev" / "pairs.csv")
    files = sorted({p for fold, _, a, b in pairs if fold >= 4 for p in (a, b)})
    files += sorted((SHARED / "attributes-utk" / "images").glob("*.jpg"))
    files = files[:: max(1, len(files) // args.limit)][: args.limit]
    pipeline = Pipeline.from_settings(Settings())
    counts: Counter[str] = Counter()
    emotions: Counter[int] = Counter()
    ms = []
    for path in files:
        img = decode_bytes(path.read_bytes())
        faces = pipeline.detector.detect(img.bgr, max_faces=1, min_face_size=20)
        if not faces:
            continue
        started = time.perf_counter()
        emotion = pipeline.expression.emotions(img.bgr, faces)[0]
        ms.append(1000 * (time.perf_counter() - started))
        emotions[emotion.type] += 1
        meshes = pipeline.analyzer.meshes(img.bgr, faces)
        smile = pipeline.analyzer.attributes(img.bgr, meshes)[0].expression.smile
        if smile >= BROAD:
            counts["broad"] += 1
            counts["broad_happy"] += emotion.type == 1
        elif smile <= NONE:
            counts["none"] += 1
            counts["none_not_happy"] += emotion.type != 1
    print(
        json.dumps(
            {
                "bench": "emotion",
                "faces": len(ms),
                "broad_smiles": counts["broad"],
                "happy_given_broad_smile": round(counts["broad_happy"] / max(counts["broad"], 1), 4),
                "no_smile": counts["none"],
                "not_happy_given_no_smile": round(counts["none_not_happy"] / max(counts["none"], 1), 4),
                "emotion_types": dict(sorted(emotions.items())),
                "ms_per_face_median": round(statistics.median(ms), 2) if ms else None,
            }
        )
    )


if __name__ == "__main__":
    main()
