"""The person-level feature used by SearchPersons and VerifyPerson.

Fusion: the L2-normalised mean of the person's L2-normalised face embeddings. With SFace's cosine geometry the mean
points at the centre of the person's faces, so pose/lighting noise of single photos averages out (VerifyPerson is then a
comparison against the identity rather than its best photo). A person with one face has that face as feature."""

from __future__ import annotations

import numpy as np


def fuse(embeddings: np.ndarray) -> np.ndarray:
    mean = np.asarray(embeddings, dtype=np.float32).reshape(-1, embeddings.shape[-1]).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.float32).copy()
