"""Where YuNet's 5 points fall in dlib's 150x150 face chip, and the check that the rebuilt ResNet is dlib's.

On the images of lfw-dev fold 1 (the face nearest the centre, landmarks refined): dlib's chip
(get_face_chip_details, padding 0.25) is placed from the MediaPipe mesh's 5 points in dlib's 5-point layout
(eye corners, nose base: the same stand-in facecloud.vision.attributes uses for age/gender), the ResNet's
descriptor taken on it, and YuNet's points mapped into the chip. Prints one JSON line: the pair accuracy at dlib's
fixed Euclidean threshold 0.6 and the mean YuNet template (facecloud/vision/faceapi_resnet.py's
YUNET_TEMPLATE_150). Usage: .venv/bin/python bench/fit_resnet_template.py [--fold 1]"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from prerequisites import require_data

from facecloud.config import Settings
from facecloud.vision.attributes import DLIB_TEMPLATE, MESH_FIVE_POINTS, similarity_from
from facecloud.vision.evaluation import read_pairs
from facecloud.vision.image import decode_bytes
from facecloud.vision.pipeline import Pipeline

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-dev"
PADDING, SIZE = 0.25, 150


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fold", type=int, default=1)
    args = parser.parse_args()
    require_data(DATA / "pairs.csv")
    pipeline = Pipeline.from_settings(Settings())
    pairs = [p for p in read_pairs(DATA / "pairs.csv") if p[0] == args.fold]
    files = sorted({x for _, _, a, b in pairs for x in (a, b)})
    template = (PADDING + DLIB_TEMPLATE) / (2 * PADDING + 1) * SIZE
    descriptors, yunet_points = {}, []
    for path in files:
        img = decode_bytes(path.read_bytes())
        faces = pipeline.detector.detect(img.bgr, max_faces=50, min_face_size=20)
        if not faces:
            continue
        cx, cy = img.width / 2, img.height / 2
        face = min(faces, key=lambda f: float(np.hypot(f.x + f.width / 2 - cx, f.y + f.height / 2 - cy)))
        face = pipeline.detector.refine_landmarks(img.bgr, face)
        mesh = pipeline.analyzer.meshes(img.bgr, [face])[0]
        matrix = similarity_from(mesh.xy[list(MESH_FIVE_POINTS)].astype(np.float64), template)
        yunet_points.append(face.landmarks.astype(np.float64) @ matrix[:, :2].T + matrix[:, 2])
        chip = cv2.warpAffine(img.bgr, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
        descriptors[path] = pipeline.resnet.raw_features([chip])[0]
    kept = [(same, a, b) for _, same, a, b in pairs if a in descriptors and b in descriptors]
    correct = [(np.linalg.norm(descriptors[a] - descriptors[b]) < 0.6) == bool(same) for same, a, b in kept]
    print(
        json.dumps(
            {
                "bench": "fit_resnet_template",
                "fold": args.fold,
                "pairs": len(kept),
                "accuracy_at_dlib_threshold_0.6": round(float(np.mean(correct)), 5),
                "yunet_template_150": np.mean(yunet_points, axis=0).round(2).tolist(),
            }
        )
    )


if __name__ == "__main__":
    main()
