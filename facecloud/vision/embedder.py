"""Face embeddings with SFace (OpenCV Zoo, int8): 5-point similarity alignment to 112x112, 128-d, unit norm.

Test-time augmentation: the feature of the horizontally mirrored crop is added to the feature of the crop
before normalising (a face and its mirror are the same person; the sum averages out some pose noise)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facecloud.vision.detector import DetectedFace
from facecloud.vision.netpool import NetPool

EMBEDDING_DIM = 128


class FaceEmbedder:
    """Thread-safe: each call borrows a cv2.FaceRecognizerSF from a small pool."""

    def __init__(self, model_path: Path, flip: bool = True, pool_size: int = 2) -> None:
        self.model_path = str(model_path)
        self.flip = flip
        self._pool: NetPool[cv2.FaceRecognizerSF] = NetPool(self._new_net, pool_size)

    def _new_net(self) -> cv2.FaceRecognizerSF:
        return cv2.FaceRecognizerSF.create(self.model_path, "")

    def align(self, bgr: np.ndarray, face: DetectedFace) -> np.ndarray:
        """The 112x112 BGR crop SFace was trained on (similarity transform of the 5 landmarks)."""
        with self._pool.borrow() as net:
            return net.alignCrop(bgr, face.as_yunet_row())

    def raw_feature(self, crop: np.ndarray) -> np.ndarray:
        """SFace's output for one aligned crop, not normalised."""
        with self._pool.borrow() as net:
            return net.feature(crop).reshape(-1).astype(np.float32)

    def embed_crop(self, crop: np.ndarray, flip: bool | None = None) -> np.ndarray:
        feature = self.raw_feature(crop)
        if self.flip if flip is None else flip:
            feature = feature + self.raw_feature(cv2.flip(crop, 1))
        return normalise(feature)

    def embed(self, bgr: np.ndarray, face: DetectedFace, flip: bool | None = None) -> np.ndarray:
        return self.embed_crop(self.align(bgr, face), flip)


def normalise(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)
