"""The Mask attribute's classifier (facecloud.vision.mask): fitted on lfw-dev fold-4 faces, tested on fold-5 faces
(other people), each face as it is and with a mask drawn over it (colour from the file name), the face detected
again on the masked photo, as DetectFace does. Writes facecloud/vision/data/mask_classifier.json and prints one
JSON line with the held-out figures. Usage: .venv/bin/python bench/fit_mask.py [--per-fold N] (N evenly spaced
images of each fold; default all)"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from fit_versions import DATA, centre_face
from prerequisites import require_data

from facecloud.config import Settings
from facecloud.vision.evaluation import read_pairs
from facecloud.vision.image import decode_bytes
from facecloud.vision.mask import (
    CLASSIFIER_FILE,
    MaskClassifier,
    draw_mask,
    fit_logistic,
    mask_features,
    palette_colour,
)
from facecloud.vision.pipeline import Pipeline

FIT_FOLD, TEST_FOLD = 4, 5


def features(pipeline: Pipeline, paths: list[Path]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rows, labels, people = [], [], []
    for path in paths:
        bgr = decode_bytes(path.read_bytes()).bgr
        face = centre_face(pipeline, bgr)
        if face is None:
            continue
        masked = draw_mask(bgr, face, palette_colour(path.name))
        masked_face = centre_face(pipeline, masked)
        for image, where, label in ((bgr, face, 0), (masked, masked_face, 1)):
            if where is not None:
                rows.append(mask_features(pipeline.embedder.align(image, where)))
                labels.append(label)
                people.append(path.parent.name)
    return np.array(rows), np.array(labels, dtype=np.float64), people


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-fold", type=int, default=0)
    args = parser.parse_args()
    require_data(DATA / "pairs.csv")
    pairs = read_pairs(DATA / "pairs.csv")
    by_fold = {f: sorted({p for fold, _, a, b in pairs if fold == f for p in (a, b)}) for f in (FIT_FOLD, TEST_FOLD)}
    if args.per_fold:
        by_fold = {f: paths[:: max(1, len(paths) // args.per_fold)][: args.per_fold] for f, paths in by_fold.items()}
    pipeline = Pipeline.from_settings(Settings())
    x_fit, y_fit, fit_people = features(pipeline, by_fold[FIT_FOLD])
    x_test, y_test, test_people = features(pipeline, by_fold[TEST_FOLD])
    unseen = np.array([p not in set(fit_people) for p in test_people])
    x_test, y_test = x_test[unseen], y_test[unseen]
    mean, scale = x_fit.mean(axis=0), x_fit.std(axis=0) + 1e-6
    weights, bias = fit_logistic((x_fit - mean) / scale, y_fit, l2=1e-3, steps=3000)
    model = MaskClassifier(mean, scale, weights, bias)
    z = 1 / (1 + np.exp(-(((x_test - mean) / scale) @ weights + bias)))
    predicted = z >= 0.5
    report = {
        "bench": "fit_mask",
        "fit_faces": len(y_fit),
        "test_faces": len(y_test),
        "held_out_accuracy": round(float(np.mean(predicted == y_test)), 4),
        "false_positive_rate": round(float(np.mean(predicted[y_test == 0])), 4),
        "false_negative_rate": round(float(np.mean(~predicted[y_test == 1])), 4),
    }
    CLASSIFIER_FILE.write_text(
        json.dumps(
            {
                "model": "logistic regression on facecloud.vision.mask.mask_features of the SFace-aligned crop",
                "trained_on": f"lfw-dev fold {FIT_FOLD}: {len(y_fit)} faces, plain and with a drawn mask",
                "held_out": f"lfw-dev fold {TEST_FOLD}, people not in training: {report}",
                "mean": model.mean.round(6).tolist(),
                "scale": model.scale.round(6).tolist(),
                "weights": model.weights.round(6).tolist(),
                "bias": round(float(model.bias), 6),
            },
            indent=1,
        )
        + "\n"
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
