"""Fit the cosine -> Score calibration on ALL cross-identity pairs of ../shared/data/lfw-dev and write
facecloud/vision/data/score_calibration.json. Prints one JSON line with what it fitted.

Each image is embedded once (largest face, as the API does; mirrored-crop fusion); the impostor cosines come
from a chunked matrix product (~7 million pairs). Score s sits at the cosine whose FAR is 10^-((s-10)/10), so
40/50/60 = FAR 1e-3/1e-4/1e-5.
Usage: .venv/bin/python bench/fit_calibration.py [--features bench/out/lfw_dev_features.npz]"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from prerequisites import require_data

from facecloud.config import Settings
from facecloud.vision.calibration import DATA_FILE, ScoreCalibration, far_for_score
from facecloud.vision.embedder import normalise
from facecloud.vision.image import decode_bytes
from facecloud.vision.pipeline import Pipeline

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-dev"
OUT = Path(__file__).resolve().parent / "out"
# A knot is fitted only where at least this many impostor pairs lie above it (else the FAR is noise).
MIN_IMPOSTORS_ABOVE = 20


def features(pipeline: Pipeline, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Per image: SFace feature of the aligned crop and of its mirror (zeros where no face is found)."""
    import cv2

    embedder = pipeline.embedder
    plain = np.zeros((len(paths), 128), np.float32)
    mirrored = np.zeros((len(paths), 128), np.float32)
    for i, path in enumerate(paths):
        img = decode_bytes(path.read_bytes())
        faces = pipeline.detector.detect(img.bgr, max_faces=1, min_face_size=20)
        if faces:
            crop = embedder.align(img.bgr, pipeline.detector.refine_landmarks(img.bgr, faces[0]))
            plain[i] = embedder.raw_feature(crop)
            mirrored[i] = embedder.raw_feature(cv2.flip(crop, 1))
    return plain, mirrored


def impostor_cosines(embeddings: np.ndarray, identity: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Cosines of every pair of images of different people (each pair once)."""
    parts = []
    for start in range(0, len(embeddings), chunk):
        block = embeddings[start : start + chunk] @ embeddings.T
        rows = np.arange(start, min(start + chunk, len(embeddings)))[:, None]
        cols = np.arange(len(embeddings))[None, :]
        mask = (cols > rows) & (identity[rows] != identity[cols])
        parts.append(block[mask])
    return np.concatenate(parts)


def fit(impostors: np.ndarray) -> list[dict]:
    ordered = np.sort(impostors)[::-1]  # descending
    knots = []
    for score in np.arange(10.0, 100.0, 2.5):
        far = far_for_score(score)
        above = int(np.floor(far * len(ordered)))
        if above < MIN_IMPOSTORS_ABOVE:
            break
        # The cosine with exactly `above` impostors strictly above it.
        cosine = float((ordered[above - 1] + ordered[above]) / 2) if above < len(ordered) else float(ordered[-1])
        knots.append({"score": float(score), "far": far, "cosine": round(cosine, 6), "impostors_above": above})
    return knots


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", type=Path, default=OUT / "lfw_dev_features.npz")
    args = parser.parse_args()
    require_data(DATA / "lfw-deepfunneled")
    paths = sorted((DATA / "lfw-deepfunneled").glob("*/*.jpg"))
    started = time.perf_counter()
    if args.features.is_file():
        cached = np.load(args.features)
        plain, mirrored = cached["plain"], cached["mirrored"]
    else:
        plain, mirrored = features(Pipeline.from_settings(Settings.from_env()), paths)
        args.features.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            args.features,
            plain=plain,
            mirrored=mirrored,
            files=np.array([str(p.relative_to(DATA)) for p in paths]),
        )
    embed_s = time.perf_counter() - started
    found = np.linalg.norm(plain, axis=1) > 0
    embeddings = np.stack([normalise(v) for v in plain + mirrored])[found]
    identity = np.array([p.parent.name for p in paths])[found]
    impostors = impostor_cosines(embeddings, identity)
    knots = fit(impostors)
    DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "model": "face_recognition_sface_2021dec_int8bq.onnx + mirrored-crop fusion",
        "fitted_on": "lfw-dev (LFW deep-funneled): all cross-identity pairs",
        "images": int(found.sum()),
        "images_without_face": int((~found).sum()),
        "impostor_pairs": int(len(impostors)),
        "rule": "score = 10 * -log10(FAR) + 10 at each knot; linear in cosine between; 0 at -1, 100 at 1",
        "knots": knots,
    }
    DATA_FILE.write_text(json.dumps(document, indent=1) + "\n")
    calibration = ScoreCalibration.load()
    check = {str(s): float(np.mean(impostors > calibration.cosine_at(s))) for s in (40, 50, 60)}
    print(
        json.dumps(
            {
                "bench": "fit_calibration",
                "images": document["images"],
                "images_without_face": document["images_without_face"],
                "impostor_pairs": len(impostors),
                "embed_s": round(embed_s, 1),
                "anchors": {str(k["score"]): k["cosine"] for k in knots if k["score"] in (40.0, 50.0, 60.0)},
                "far_at_score_on_fit_data": check,
                "knots": len(knots),
                "written": str(DATA_FILE),
            }
        )
    )


if __name__ == "__main__":
    main()
