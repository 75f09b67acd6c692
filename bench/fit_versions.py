"""Features of every lfw-dev image for the two face model versions and the masked-face work, then the fits.

Per image (the face nearest the centre, landmarks refined, as `facecloud eval lfw`): SFace and the ResNet
(facecloud.vision.faceapi_resnet), each with mirrored-crop fusion, of
  plain   the photo as it is;
  masked  the photo with a mask drawn over the face (facecloud.vision.mask; colour from the file name), the
          face detected again on the masked photo;
  covered_masked / covered_plain  the grey CompareMaskFace mask drawn over each of those;
the three masked views only for images of folds 4-5, and without mirrored-crop fusion except the masked SFace
feature the Mask classifier learns from (time on 2 shared cores).
Extraction runs in resumable parts (bench/out/versions_features_partKofN.npz); the merge is
bench/out/versions_features.npz. Then the fits (bench/fit_versions_fits.py), one JSON line.
Usage: .venv/bin/python bench/fit_versions.py --extract-only --part K --parts N   (each part, resumable)
       .venv/bin/python bench/fit_versions.py --parts N                            (merge and fit)"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from prerequisites import missing, require_data

from facecloud.config import Settings
from facecloud.vision.evaluation import read_pairs
from facecloud.vision.image import decode_bytes
from facecloud.vision.mask import COMPARE_COLOUR, draw_mask, palette_colour
from facecloud.vision.pipeline import Pipeline

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw-dev"
OUT = Path(__file__).resolve().parent / "out"
FEATURES = OUT / "versions_features.npz"
# Masked views only for the images of folds 4-5 (time on 2 shared cores): fold 4 fits, fold 5 tests.
MASKED_FOLDS = (4, 5)
VARIANTS = ("plain", "masked", "covered_masked", "covered_plain")


def centre_face(pipeline: Pipeline, bgr: np.ndarray):  # type: ignore[no-untyped-def]
    faces = pipeline.detector.detect(bgr, max_faces=50, min_face_size=20)
    if not faces:
        return None
    cx, cy = bgr.shape[1] / 2, bgr.shape[0] / 2
    face = min(faces, key=lambda f: float(np.hypot(f.x + f.width / 2 - cx, f.y + f.height / 2 - cy)))
    return pipeline.detector.refine_landmarks(bgr, face)


def image_features(
    pipeline: Pipeline, path: Path, timing: dict[str, float], with_masks: bool
) -> dict[str, np.ndarray] | None:
    bgr = decode_bytes(path.read_bytes()).bgr
    face = centre_face(pipeline, bgr)
    if face is None:
        return None
    started = time.perf_counter()
    out = {"plain_sface": pipeline.embedder.embed(bgr, face)}
    middle = time.perf_counter()
    out["plain_resnet"] = pipeline.resnet.embed(bgr, face)
    timing["sface"] += middle - started
    timing["resnet"] += time.perf_counter() - middle
    if not with_masks:
        return out
    masked = draw_mask(bgr, face, palette_colour(path.name))
    masked_face = centre_face(pipeline, masked) or face
    views = {
        "masked": (masked, masked_face),
        "covered_masked": (draw_mask(masked, masked_face, COMPARE_COLOUR), masked_face),
        "covered_plain": (draw_mask(bgr, face, COMPARE_COLOUR), face),
    }
    for name, (image, where) in views.items():  # mirrored-crop fusion for masked SFace only (the Mask classifier)
        out[f"{name}_sface"] = pipeline.embedder.embed(image, where, flip=name == "masked")
        out[f"{name}_resnet"] = pipeline.resnet.embed(image, where, flip=False)
    return out


def extract(pipeline: Pipeline, files: list[Path], masked_files: set[Path], mine: list[int], out: Path) -> None:
    """Features of files[i] for i in `mine` (a part of the list), checkpointed to `out` every 25 images."""
    keys = [f"{v}_{m}" for v in VARIANTS for m in ("sface", "resnet")]
    arrays = {k: np.zeros((len(files), 128), np.float32) for k in keys}
    arrays["found"] = np.zeros(len(files), bool)
    arrays["processed"] = np.zeros(len(files), bool)
    arrays["timing"] = np.zeros(3)  # seconds of SFace, seconds of ResNet, faces timed
    if out.exists():
        arrays.update({k: v.copy() for k, v in np.load(out).items() if k in arrays})
    for count, i in enumerate(mine):
        if arrays["processed"][i]:
            continue
        timing = {"sface": 0.0, "resnet": 0.0}
        feats = image_features(pipeline, files[i], timing, files[i] in masked_files)
        if feats is not None:
            arrays["found"][i] = True
            arrays["timing"] += (timing["sface"], timing["resnet"], 1)
            for k, v in feats.items():
                arrays[k][i] = v
        arrays["processed"][i] = True
        if count % 25 == 24:
            np.savez(out, **arrays)
            print(f"{count + 1}/{len(mine)}", file=sys.stderr, flush=True)
    np.savez(out, **arrays)


def merged(files: list[Path], masked_files: set[Path], parts: list[Path]) -> dict[str, np.ndarray]:
    """Each image from the first part file that processed it (a reversed run may overlap its forward one)."""
    loaded = [dict(np.load(p)) for p in parts if p.exists()]
    processed = np.array([part["processed"] for part in loaded])
    if not np.all(processed.any(axis=0)):
        missing(
            "bench/out/versions_features.npz needs every image extracted: run "
            f"`.venv/bin/python bench/fit_versions.py --extract-only --part K --parts {len(parts) // 2}` "
            "for each part K first"
        )
    source = np.argmax(processed, axis=0)
    rows = np.arange(len(files))
    keys = [k for k in loaded[0] if k not in ("processed", "timing")]
    arrays = {k: np.stack([part[k] for part in loaded])[source, rows] for k in keys}
    timing = sum(part["timing"] for part in loaded)
    arrays["ms_per_face"] = 1000 * timing[:2] / max(timing[2], 1)
    arrays["masked_done"] = np.linalg.norm(arrays["masked_sface"], axis=1) > 0  # the rows that got masked views
    arrays["files"] = np.array([str(p.relative_to(DATA)) for p in files])
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", type=int, default=0, help="Extract only files[part::parts] (resumable).")
    parser.add_argument("--parts", type=int, default=1)
    parser.add_argument("--extract-only", action="store_true")
    parser.add_argument("--reverse", action="store_true", help="Walk the part backwards, into its own file.")
    parser.add_argument("--no-masks", action="store_true", help="Plain views only for the images left.")
    args = parser.parse_args()
    require_data(DATA / "pairs.csv")
    pairs = read_pairs(DATA / "pairs.csv")
    files = sorted({p for _, _, a, b in pairs for p in (a, b)})
    masked = set() if args.no_masks else {p for fold, _, a, b in pairs if fold in MASKED_FOLDS for p in (a, b)}
    part_files = [OUT / f"versions_features_part{k}of{args.parts}{r}.npz" for k in range(args.parts) for r in ("", "r")]
    if args.extract_only:
        OUT.mkdir(exist_ok=True)
        mine = list(range(args.part, len(files), args.parts))
        out = part_files[2 * args.part + args.reverse]
        extract(Pipeline.from_settings(Settings()), files, masked, mine[::-1] if args.reverse else mine, out)
        return
    if not FEATURES.exists():
        np.savez(FEATURES, **merged(files, masked, part_files))
    from fit_versions_fits import run_fits  # the fitting half (same folder), kept apart for reading

    print(json.dumps(run_fits(dict(np.load(FEATURES)), pairs, DATA)))


if __name__ == "__main__":
    main()
