"""Detection accuracy on ../shared/data: recall of the hand-drawn VOC boxes at IoU >= 0.4, exact face counts.

Prints one JSON line. Usage: .venv/bin/python bench/detection.py [--threshold 0.6] [--min-face-size 20]"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from prerequisites import require_data

from facecloud.config import Settings
from facecloud.vision import zoo
from facecloud.vision.detector import SCORE_THRESHOLD, FaceDetector

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_bgr(path: Path, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Photos as annotated: EXIF orientation applied unless that contradicts the labelled size."""
    pil = Image.open(path)
    turned = ImageOps.exif_transpose(pil)
    if expected_size is None or turned.size == expected_size:
        pil = turned
    return np.ascontiguousarray(np.asarray(pil.convert("RGB"))[:, :, ::-1])


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax0, ay0, aw, ah = a
    bx0, by0, bw, bh = b
    ix = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


def voc_recall(detector: FaceDetector, min_face_size: int) -> dict:
    folder = DATA / "detection-voc"
    truth: dict[str, list[tuple[float, ...]]] = defaultdict(list)
    with (folder / "boxes.csv").open() as handle:
        for row in csv.DictReader(handle):
            if row["ignore"] == "0":
                truth[row["image"]].append(tuple(float(row[k]) for k in ("x", "y", "w", "h")))
    found = total = extra = 0
    for image, boxes in truth.items():
        faces = detector.detect(load_bgr(folder / image), max_faces=1000, min_face_size=min_face_size)
        predicted = [(f.x, f.y, f.width, f.height) for f in faces]
        matched = set()
        for box in boxes:
            best = max(range(len(predicted)), key=lambda i: iou(box, predicted[i]), default=None)
            if best is not None and best not in matched and iou(box, predicted[best]) >= 0.4:
                matched.add(best)
                found += 1
        total += len(boxes)
        extra += len(predicted) - len(matched)
    return {
        "recall_iou_0.4": round(found / total, 4),
        "found": found,
        "boxes": total,
        "unmatched_detections": extra,
        "images": len(truth),
    }


def count_accuracy(detector: FaceDetector, min_face_size: int) -> dict:
    folder = DATA / "detection-counts"
    annotations = json.loads((folder / "annotations.json").read_text())["images"]
    exact = noses_in_box = noses = 0
    wrong = []
    for item in annotations:
        bgr = load_bgr(folder / "images" / item["file"], (item["width"], item["height"]))
        faces = detector.detect(bgr, max_faces=1000, min_face_size=min_face_size)
        if len(faces) == item["n_faces"]:
            exact += 1
        else:
            wrong.append({"file": item["file"], "expected": item["n_faces"], "found": len(faces)})
        for nx, ny in item["noses"]:
            noses += 1
            noses_in_box += any(f.x <= nx <= f.x + f.width and f.y <= ny <= f.y + f.height for f in faces)
    return {
        "exact_count_rate": round(exact / len(annotations), 4),
        "images": len(annotations),
        "nose_in_a_box_rate": round(noses_in_box / max(noses, 1), 4),
        "wrong": wrong,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threshold", type=float, default=SCORE_THRESHOLD)
    parser.add_argument("--min-face-size", type=int, default=20)
    args = parser.parse_args()
    require_data(DATA / "detection-voc", DATA / "detection-counts")
    detector = FaceDetector(zoo.path(Settings.from_env(), zoo.YUNET), score_threshold=args.threshold)
    result = {
        "bench": "detection",
        "score_threshold": args.threshold,
        "min_face_size": args.min_face_size,
        "voc": voc_recall(detector, args.min_face_size),
        "counts": count_accuracy(detector, args.min_face_size),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
