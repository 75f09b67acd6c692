"""LFW embeddings for calibration and identification evaluation: every image of lfw-dev embedded once (largest face),
through the service's own vision pipeline, and cached as .npz so that fitting and evaluating are repeatable."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import numpy as np

Embedder = Callable[[Path], np.ndarray | None]


def lfw_images(lfw_dir: Path) -> list[tuple[str, Path]]:
    """(identity, image path) for every image, sorted (deterministic)."""
    root = lfw_dir / "lfw-deepfunneled" if (lfw_dir / "lfw-deepfunneled").is_dir() else lfw_dir
    return [(p.parent.name, p) for p in sorted(root.glob("*/*.jpg"))]


def pipeline_embedder(pipeline) -> Embedder:  # type: ignore[no-untyped-def]
    """Embeds the largest face of an image file with facecloud's vision pipeline (None when no face is found)."""

    def embed(path: Path) -> np.ndarray | None:
        image = pipeline.decode(image=base64.b64encode(path.read_bytes()).decode(), url=None, need_rotate=False)
        faces = pipeline.detect(image, max_faces=1, min_face_size=20)
        if not faces:
            return None
        return np.asarray(pipeline.embed(image, faces[0]), dtype=np.float32)

    return embed


def load_lfw_embeddings(
    lfw_dir: Path, embedder: Embedder, cache: Path | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(embeddings [n,128] float32, identity index per row [n], image names). Images with no face are left out."""
    if cache is not None and cache.exists():
        data = np.load(cache, allow_pickle=False)
        return data["embeddings"], data["labels"], list(data["names"])
    identities: dict[str, int] = {}
    vectors, labels, names = [], [], []
    for identity, path in lfw_images(lfw_dir):
        vector = embedder(path)
        if vector is None:
            continue
        vectors.append(vector / np.linalg.norm(vector))
        labels.append(identities.setdefault(identity, len(identities)))
        names.append(f"{identity}/{path.name}")
    embeddings = np.stack(vectors).astype(np.float32)
    label_array = np.asarray(labels, dtype=np.int32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, embeddings=embeddings, labels=label_array, names=np.asarray(names))
    return embeddings, label_array, names


def from_vision_features(features: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The same embeddings from the vision part's feature cache (bench/fit_calibration.py: per image the SFace
    feature of the aligned crop and of its mirror; the pipeline's embedding is their normalised sum)."""
    data = np.load(features, allow_pickle=False)
    fused = data["plain"] + data["mirrored"]
    found = np.linalg.norm(data["plain"], axis=1) > 0
    files = [str(f) for f in data["files"]]
    identities: dict[str, int] = {}
    labels = np.array([identities.setdefault(Path(f).parent.name, len(identities)) for f in files], np.int32)
    embeddings = fused / np.maximum(np.linalg.norm(fused, axis=1, keepdims=True), 1e-12)
    names = [f"{Path(f).parent.name}/{Path(f).name}" for f in files]
    return (
        embeddings[found].astype(np.float32),
        labels[found],
        [n for n, ok in zip(names, found, strict=True) if ok],
    )
