"""Fits the search Score table (facecloud/gallery/data/search_calibration.json) on LFW identities.

Usage: .venv/bin/python scripts/fit_search_calibration.py [--lfw ../shared/data/lfw-dev] [--cache FILE]
Embeds every lfw-dev image with facecloud's vision pipeline (largest face), takes every cross-identity pair as an
impostor, and writes knots (score, cosine) for scores 10..100 in steps of 2.5: empirical quantiles where at least
MIN_TAIL pairs exceed the cosine, an exponential tail fit (log10 FAR linear in cosine, fitted over FAR 1e-4..1e-6)
beyond. Prints the genuine-pair score distribution as a check."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from facecloud.config import Settings
from facecloud.gallery.calibration import DATA_FILE
from facecloud.gallery.lfw import from_vision_features, load_lfw_embeddings, pipeline_embedder
from facecloud.vision.calibration import ScoreCalibration, far_for_score

MIN_TAIL = 10
LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-dev"
TAIL_FIT_FARS = (1e-4, 1e-6)


def impostor_cosines(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    chunks = []
    for start in range(0, len(embeddings), 512):
        block = embeddings[start : start + 512] @ embeddings.T
        rows = np.arange(start, min(start + 512, len(embeddings)))
        upper = np.arange(len(embeddings))[None, :] > rows[:, None]
        different = labels[rows][:, None] != labels[None, :]
        chunks.append(block[upper & different])
    return np.sort(np.concatenate(chunks))


def genuine_cosines(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    values = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) > 1:
            sims = embeddings[rows] @ embeddings[rows].T
            values.append(sims[np.triu_indices(len(rows), 1)])
    return np.concatenate(values)


def fit_knots(impostors: np.ndarray) -> list[dict]:
    n = len(impostors)

    def cosine_at_far(far: float) -> float:
        return float(impostors[min(n - 1, int(np.ceil(n * (1 - far))))])

    fars = np.logspace(np.log10(TAIL_FIT_FARS[0]), np.log10(TAIL_FIT_FARS[1]), 9)
    slope, intercept = np.polyfit([cosine_at_far(f) for f in fars], np.log10(fars), 1)
    knots = []
    for score in np.arange(10.0, 100.01, 2.5):
        far = far_for_score(score)
        if far * n >= MIN_TAIL:
            cosine, source = cosine_at_far(far), "empirical"
        else:
            cosine, source = (np.log10(far) - intercept) / slope, "tail fit"
        knots.append(
            {
                "score": float(score),
                "far": far,
                "cosine": round(float(min(cosine, 0.9999)), 5),
                "source": source,
            }
        )
    return knots


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lfw", type=Path, default=LFW)
    parser.add_argument("--cache", type=Path, default=None, help="our .npz cache of the LFW embeddings")
    parser.add_argument(
        "--vision-features",
        type=Path,
        default=None,
        help="the vision part's feature cache (bench/out/lfw_dev_features.npz) instead of embedding",
    )
    parser.add_argument("--out", type=Path, default=DATA_FILE)
    args = parser.parse_args()
    if args.vision_features is not None:
        embeddings, labels, _ = from_vision_features(args.vision_features)
    else:
        from facecloud.vision.pipeline import Pipeline

        pipeline = Pipeline.from_settings(Settings.from_env())
        embeddings, labels, _ = load_lfw_embeddings(args.lfw, pipeline_embedder(pipeline), args.cache)
    impostors = impostor_cosines(embeddings, labels)
    knots = fit_knots(impostors)
    table = {
        "fitted_on": "lfw-dev (all images, largest face, facecloud vision pipeline)",
        "impostor_pairs": int(len(impostors)),
        "law": "score = 10 * -log10(FAR per comparison) + 10",
        "knots": knots,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    calibration = ScoreCalibration.load(args.out)
    genuine = calibration.scores_of(genuine_cosines(embeddings, labels))
    print(
        json.dumps(
            {
                "impostor_pairs": len(impostors),
                "genuine_pairs": len(genuine),
                "genuine_score_p10_p50_p90": np.percentile(genuine, [10, 50, 90]).round(1).tolist(),
                "knots_70_80_90": [k for k in knots if k["score"] in (70.0, 80.0, 90.0)],
            }
        )
    )


if __name__ == "__main__":
    main()
