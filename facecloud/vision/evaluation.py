"""Verification accuracy with the LFW protocol, and the embedding of a folder of face photos.

LFW labels the face in the centre of each 250x250 image, so the evaluation embeds the detected face
nearest the centre (the API itself uses the largest or most confident face). Images where the detector
finds nothing are counted and get a zero embedding (cosine 0 with everything)."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facecloud.vision.calibration import ScoreCalibration
from facecloud.vision.image import decode_bytes
from facecloud.vision.pipeline import Pipeline


def embed_file(pipeline: Pipeline, path: Path, flip: bool = True, version: str | None = None) -> np.ndarray | None:
    img = decode_bytes(path.read_bytes())
    faces = pipeline.detector.detect(img.bgr, max_faces=50, min_face_size=20)
    if not faces:
        return None
    centre = np.array([img.width / 2, img.height / 2])
    face = min(faces, key=lambda f: float(np.linalg.norm(np.array([f.x + f.width / 2, f.y + f.height / 2]) - centre)))
    if version is not None:  # a FaceModelVersion, as the actions embed (always with mirrored-crop fusion)
        return pipeline.models.embed(img.bgr, face, version)
    return pipeline.embedder.embed(img.bgr, pipeline.detector.refine_landmarks(img.bgr, face), flip=flip)


def embed_files(
    pipeline: Pipeline,
    paths: list[Path],
    flip: bool = True,
    version: str | None = None,
    on_image: Callable[[], None] | None = None,
) -> tuple[np.ndarray, int]:
    """(N x 128 embeddings, number of images without a detected face: zero rows). on_image: called after each."""
    matrix = np.zeros((len(paths), 128), dtype=np.float32)
    missed = 0
    for i, path in enumerate(paths):
        vector = embed_file(pipeline, path, flip, version)
        if vector is None:
            missed += 1
        else:
            matrix[i] = vector
        if on_image is not None:
            on_image()
    return matrix, missed


def _per_image(progress: Callable[[int, int | None], None] | None, total: int) -> Callable[[], None] | None:
    if progress is None:
        return None
    progress(0, total)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        progress(done, total)

    return step


def read_pairs(pairs_csv: Path) -> list[tuple[int, int, Path, Path]]:
    base = pairs_csv.parent
    with pairs_csv.open() as handle:
        return [(int(r["fold"]), int(r["same"]), base / r["img1"], base / r["img2"]) for r in csv.DictReader(handle)]


def best_threshold(cosines: np.ndarray, same: np.ndarray) -> float:
    candidates = np.unique(cosines)
    mids = np.concatenate([[candidates[0] - 1e-6], (candidates[:-1] + candidates[1:]) / 2, [candidates[-1] + 1e-6]])
    accuracies = [np.mean((cosines > t) == same) for t in mids]
    return float(mids[int(np.argmax(accuracies))])


def evaluate_lfw(
    pipeline: Pipeline,
    pairs_csv: Path,
    flip: bool = True,
    version: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict:
    pairs = read_pairs(pairs_csv)
    files = sorted({p for _, _, a, b in pairs for p in (a, b)})
    index = {p: i for i, p in enumerate(files)}
    started = time.perf_counter()
    embeddings, missed = embed_files(pipeline, files, flip, version, _per_image(progress, len(files)))
    seconds = time.perf_counter() - started
    folds = np.array([f for f, _, _, _ in pairs])
    same = np.array([s for _, s, _, _ in pairs]).astype(bool)
    cosines = np.array([float(embeddings[index[a]] @ embeddings[index[b]]) for _, _, a, b in pairs])
    fold_accuracy = []
    for fold in sorted(set(folds.tolist())):
        test = folds == fold
        threshold = best_threshold(cosines[~test], same[~test])
        fold_accuracy.append(float(np.mean((cosines[test] > threshold) == same[test])))
    if version is None:
        scores = ScoreCalibration.load().scores_of(cosines)
    else:
        scores = np.array([pipeline.models.score(c, version) for c in cosines])
    impostor, genuine = scores[~same], scores[same]
    return {
        "accuracy": round(float(np.mean(fold_accuracy)), 5),
        "std": round(float(np.std(fold_accuracy)), 5),
        "pairs": len(pairs),
        "folds": len(fold_accuracy),
        "fold_accuracy": [round(a, 5) for a in fold_accuracy],
        "far_at_score": {str(s): round(float(np.mean(impostor > s)), 6) for s in (40, 50, 60)},
        "tar_at_score": {str(s): round(float(np.mean(genuine > s)), 5) for s in (40, 50, 60)},
        "images": len(files),
        "images_without_face": missed,
        "flip_fusion": flip if version is None else True,
        "face_model_version": version,
        "embed_ms_per_image": round(1000 * seconds / max(len(files), 1), 1),
    }
