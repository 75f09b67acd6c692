"""Static liveness at the recommended threshold (Score >= 40 is live): APCER and BPCER, one JSON line.

    .venv/bin/python bench/liveness.py FOLDER          FOLDER holds live/ and spoof/ subfolders of photos
    .venv/bin/python bench/liveness.py --shared        the sets of ../shared/data (below), each reported apart
    .venv/bin/python bench/liveness.py --shared --fit  also refits the fusion weight and threshold (fit sets only)

Weights: the packaged ones, or FACECLOUD_MODEL_DIR (the same two files). Each photo goes through the service's own
path: decode (EXIF rotation, Tencent's limits), YuNet detection of the largest face, the MiniFASNet pair. A photo
where no face is found counts as rejected (not live).

The --shared sets (../shared/data, FACECLOUD_SHARED_DIR to move it):
  spoof        liveness-samples image_F1/F2 (the only spoof photos there are: 2)
  live-sample  liveness-samples image_T1 (1)
  lfw-test60   60 LFW photos: random.Random(0).sample(sorted(lfw-deepfunneled/**/*.jpg), 60): the held-out set
  lfw-fit200   200 other LFW photos: random.Random(1).sample(the rest, 200)                  (fit set)
  deepface     the 25 verify-deepface photos                                                  (fit set)
  utk100       the first 100 attributes-utk crops (200x200, face filling the frame)          (fit set)
The fit (facecloud/vision/liveness.py: V2_WEIGHT, LIVE_LOGIT_THRESHOLD) uses the fit sets and the 2 spoofs.

Per set: apcer (spoofs accepted) or bpcer (live photos rejected) with the counts they rest on, p50_ms per photo
(detection + liveness, warm, one at a time) and no_face."""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from prerequisites import require_data

from facecloud.config import Settings
from facecloud.errors import ApiError
from facecloud.vision.image import decode_bytes
from facecloud.vision.liveness import LIVE_LOGIT_MARGIN, RECOMMENDED_THRESHOLD, V2_WEIGHT, fused_log_odds
from facecloud.vision.pipeline import Pipeline

SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
SHARED = Path(os.environ.get("FACECLOUD_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / "data"
FIT_SETS = ("lfw-fit200", "deepface", "utk100")
BPCER_TOLERANCE = 0.01
WEIGHT_GRID = [round(0.1 * i, 1) for i in range(11)]


def folder_sets(folder: Path) -> dict[str, tuple[list[Path], bool]]:
    sets = {}
    for label, live in (("live", True), ("spoof", False)):
        sub = folder / label
        if not sub.is_dir():
            raise SystemExit(f"{sub} is missing: FOLDER must hold live/ and spoof/")
        sets[label] = ([p for p in sorted(sub.iterdir()) if p.suffix.lower() in SUFFIXES], live)
    return sets


def shared_sets(data: Path) -> dict[str, tuple[list[Path], bool]]:
    samples = data / "liveness-samples"
    lfw = sorted((data / "lfw-dev" / "lfw-deepfunneled").rglob("*.jpg"))
    test60 = random.Random(0).sample(lfw, 60)
    rest = sorted(set(lfw) - set(test60))
    return {
        "spoof": ([samples / "image_F1.jpg", samples / "image_F2.jpg"], False),
        "live-sample": ([samples / "image_T1.jpg"], True),
        "lfw-test60": (test60, True),
        "lfw-fit200": (random.Random(1).sample(rest, 200), True),
        "deepface": (sorted((data / "verify-deepface" / "images").glob("*.jpg")), True),
        "utk100": (sorted((data / "attributes-utk" / "images").glob("*.jpg"))[:100], True),
    }


def judge(pipeline: Pipeline, path: Path) -> tuple[tuple[float, float] | None, float | None, float]:
    """(the two models' live probabilities or None without a face, Score, milliseconds)."""
    image = decode_bytes(path.read_bytes())
    start = time.perf_counter()
    faces = pipeline.detect(image, max_faces=1, min_face_size=34)
    if not faces:
        return None, None, (time.perf_counter() - start) * 1000
    face = faces[0]
    result = pipeline.liveness.predict(image.bgr, (face.x, face.y, face.width, face.height))
    return result.model_probabilities, result.score, (time.perf_counter() - start) * 1000  # type: ignore[return-value]


def measure(pipeline: Pipeline, paths: list[Path]) -> list[tuple[tuple[float, float] | None, float | None, float]]:
    rows = []
    for path in paths:
        try:
            rows.append(judge(pipeline, path))
        except ApiError as error:  # undecodable or out-of-limits photo: rejected, like the service would
            print(f"{path}: {error.code}", file=sys.stderr)
            rows.append((None, None, float("nan")))
    return rows


def report(rows: list, live: bool) -> dict:
    accepted = sum(score is not None and score >= RECOMMENDED_THRESHOLD for _, score, _ in rows)
    errors = len(rows) - accepted if live else accepted
    times = [ms for _, _, ms in rows if ms == ms]
    return {
        ("bpcer" if live else "apcer"): round(errors / len(rows), 4) if rows else None,
        ("rejected" if live else "accepted"): errors,
        "photos": len(rows),
        "no_face": sum(probs is None for probs, _, _ in rows),
        "p50_ms": round(statistics.median(times), 1) if times else None,
    }


def fit(measured: dict[str, list], margin: float = LIVE_LOGIT_MARGIN) -> dict:
    """For each V2 weight of the grid, the threshold LIVE_LOGIT_MARGIN above the higher spoof's fused log-odds,
    and the fit sets' BPCER there. The most even fusion (smallest V2 weight) within BPCER_TOLERANCE of the lowest
    BPCER wins: with 2 spoof photos, keeping the second model's view is worth a point of BPCER."""
    spoofs = [probs for probs, _, _ in measured["spoof"] if probs is not None]
    lives = [probs for name in FIT_SETS for probs, _, _ in measured[name]]
    grid = []
    for weight in WEIGHT_GRID:

        def fused(probs: tuple[float, float], w: float = weight) -> float:
            return w * float(np.log(max(probs[0], 1e-7) / max(1 - probs[0], 1e-7))) + (1 - w) * float(
                np.log(max(probs[1], 1e-7) / max(1 - probs[1], 1e-7))
            )

        threshold = max(fused(p) for p in spoofs) + margin
        rejected = sum(p is None or fused(p) < threshold for p in lives)
        grid.append(
            {"v2_weight": weight, "threshold": round(threshold, 2), "fit_bpcer": round(rejected / len(lives), 4)}
        )
    lowest = min(g["fit_bpcer"] for g in grid)
    best = min((g for g in grid if g["fit_bpcer"] <= lowest + BPCER_TOLERANCE), key=lambda g: g["v2_weight"])
    return {
        "fit_photos_live": len(lives),
        "fit_photos_spoof": len(spoofs),
        "margin": margin,
        "best": best,
        "grid": grid,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--shared", action="store_true")
    parser.add_argument("--fit", action="store_true")
    args = parser.parse_args()
    if args.shared == (args.folder is not None):
        raise SystemExit(__doc__)
    if args.shared:
        require_data(SHARED / "lfw-dev" / "lfw-deepfunneled", SHARED / "liveness-samples", SHARED / "verify-deepface")
    sets = shared_sets(SHARED) if args.shared else folder_sets(args.folder)
    pipeline = Pipeline.from_settings(Settings.from_env())
    pipeline.liveness.ensure_ready()
    warm = next(paths[0] for paths, _ in sets.values() if paths)
    judge(pipeline, warm)  # the detector and both sessions load on first use
    measured = {name: measure(pipeline, paths) for name, (paths, _) in sets.items()}
    out: dict = {
        "bench": "liveness",
        "threshold": RECOMMENDED_THRESHOLD,
        "fusion": {"v2_weight": V2_WEIGHT, "log_odds": "V2_WEIGHT*logit(V2) + (1-V2_WEIGHT)*logit(V1SE)"},
        "sets": {name: report(measured[name], live) for name, (_, live) in sets.items()},
    }
    if args.fit:
        out["fit"] = fit(measured)
    out["spoof_log_odds"] = [
        round(fused_log_odds(*probs), 2) for probs, _, _ in measured.get("spoof", []) if probs is not None
    ]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
