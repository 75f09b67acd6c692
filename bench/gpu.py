"""The GPU path in one go: bulk enrolment faces/s and CompareFace latency, with the providers that served them.

On a machine with an NVIDIA GPU, CUDA 12 and a package registry (prepared here, not yet run on a GPU):

    scripts/install.sh --test
    .venv/bin/pip uninstall -y onnxruntime && .venv/bin/pip install onnxruntime-gpu==1.31.1   # CUDA 12 build
    .venv/bin/python bench/gpu.py [--images 2000] [--batch 64] [--repeat 50]

onnxruntime-gpu 1.31.1 is PyPI's newest (there is no 1.32.0 beside the CPU pin); the vision and gateway tests and
this script pass on ONNX Runtime 1.31.1. The GPU machine lent to development sessions cannot run it (CUDA 13 image,
no registry, 64 MiB carried per call against a 244-MiB wheel): docs/vision.md, GPU.

The pipeline picks ONNX Runtime's CUDA provider when it is installed (Pipeline.has_cuda): SFace then runs on
ONNX Runtime in batches (all crops of an enrolment batch and their mirrors in one call); YuNet detection runs on
ONNX Runtime too, one photo per call (cuDNN's heuristic algorithm choice: photo sizes vary). Without the CUDA
provider the script still runs and says so ("cuda": false), measuring the CPU path.

Enrolment: the first --images photos of ../shared/data/lfw-dev (sorted), decoded and detected on a thread pool,
embedded --batch faces per call; faces/s over the whole run and over the embedding alone. CompareFace: the
registered handler called in-process (no HTTP) on bench/vision.py's 480x640 pair, p50/p95 over --repeat calls.
Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import onnxruntime as ort
from prerequisites import require_data
from vision import back_to_back_ms, cases, direct_runner, percentiles

from facecloud.config import Settings
from facecloud.vision.image import decode_bytes
from facecloud.vision.pipeline import Pipeline

SHARED = Path(os.environ.get("FACECLOUD_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")) / "data"


def enrolment(pipeline: Pipeline, paths: list[Path], batch: int) -> dict:
    def detect(path: Path):  # type: ignore[no-untyped-def]
        image = decode_bytes(path.read_bytes())
        faces = pipeline.detect(image, max_faces=1, min_face_size=20)
        return (image, faces[0]) if faces else None

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        found = [pair for pair in pool.map(detect, paths) if pair is not None]
    detected = time.perf_counter()
    embedded = 0
    for start in range(0, len(found), batch):
        embedded += len(pipeline.embed_many(found[start : start + batch]))
    done = time.perf_counter()
    return {
        "photos": len(paths),
        "faces": embedded,
        "batch": batch,
        "faces_per_s": round(embedded / (done - started), 1),
        "detect_faces_per_s": round(len(found) / (detected - started), 1),
        "embed_faces_per_s": round(embedded / (done - detected), 1),
    }


def compare_latency(data_dir: Path, repeat: int) -> dict:
    from facecloud.gateway.registry import registry

    run = direct_runner(data_dir)
    name, body = cases(set(registry()))["CompareFace 1+1"]
    for _ in range(4):  # warm-up (CUDA kernels), beside the one back_to_back_ms makes
        run(name, body)
    latency = percentiles(back_to_back_ms(run, name, body, repeat, clock=time.perf_counter))
    return {"p50_ms": latency["p50"], "p95_ms": latency["p95"], "repeat": repeat}


def engine_of(session) -> str:  # type: ignore[no-untyped-def]
    """What runs a session: ONNX Runtime (with its providers), OpenVINO on the CPU, or OpenCV's DNN (no session)."""
    if session is None:
        return "opencv-dnn cpu"
    if hasattr(session, "get_providers"):
        return "onnxruntime " + ",".join(session.get_providers())
    return "openvino cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    require_data(SHARED / "lfw-dev" / "lfw-deepfunneled")
    paths = sorted((SHARED / "lfw-dev" / "lfw-deepfunneled").rglob("*.jpg"))[: args.images]
    with tempfile.TemporaryDirectory(prefix="facecloud-gpu-") as tmp:
        pipeline = Pipeline.from_settings(Settings.from_env(data_dir=Path(tmp)))
        session = pipeline.embedder.session
        enrolment(pipeline, paths[: min(64, len(paths))], args.batch)  # warm-up: models, CUDA kernels
        result = {
            "bench": "gpu",
            "onnxruntime": ort.__version__,
            "available_providers": ort.get_available_providers(),
            "cuda": pipeline.has_cuda,
            "embedder": engine_of(session),
            "detector": "onnxruntime " + ",".join(pipeline.detector.providers),
            "cpu_count": os.cpu_count(),
            "enrolment": enrolment(pipeline, paths, args.batch),
            "compare_face_direct": compare_latency(Path(tmp) / "compare", args.repeat),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
