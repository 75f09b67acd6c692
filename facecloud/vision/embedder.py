"""Face embeddings with SFace (OpenCV Zoo, int8): 5-point similarity alignment to 112x112, 128-d,
L2-normalised.

Test-time augmentation: the feature of the horizontally mirrored crop is added to the feature of the crop
before
normalising (a face and its mirror image are the same person; averaging removes some pose/lighting noise)."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from facecloud.vision.detector import DetectedFace

EMBEDDING_DIM = 128


class FaceEmbedder:
    """Thread-safe: each thread gets its own cv2.FaceRecognizerSF."""

    def __init__(self, model_path: Path, flip: bool = True) -> None:
        self.model_path = str(model_path)
        self.flip = flip
        self._local = threading.local()

    def _net(self) -> cv2.FaceRecognizerSF:
        net = getattr(self._local, "net", None)
        if net is None:
            net = cv2.FaceRecognizerSF.create(self.model_path, "")
            self._local.net = net
        return net

    def align(self, bgr: np.ndarray, face: DetectedFace) -> np.ndarray:
        """The 112x112 BGR crop SFace was trained on (similarity transform of the 5 landmarks)."""
        return self._net().alignCrop(bgr, face.as_yunet_row())

    def embed_crop(self, crop: np.ndarray, flip: bool | None = None) -> np.ndarray:
        net = self._net()
        feature = net.feature(crop).reshape(-1).astype(np.float32)
        if self.flip if flip is None else flip:
            feature = feature + net.feature(cv2.flip(crop, 1)).reshape(-1).astype(np.float32)
        return normalise(feature)

    def embed(self, bgr: np.ndarray, face: DetectedFace, flip: bool | None = None) -> np.ndarray:
        return self.embed_crop(self.align(bgr, face), flip)


def normalise(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)
