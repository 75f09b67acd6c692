"""The second embedder: dlib's ResNet-34 (128-d) as ported by npm @vladmandic/face-api (facecloud.vision.faceapi).

Alignment: a 150x150 similarity-aligned chip from YuNet's 5 points. dlib's own chip (get_face_chip_details,
padding 0.25) is placed by its 5-point predictor (eye corners, nose base), which facecloud does not run; the
template below is where YuNet's 5 points fall in that chip on average, measured on the 1,180 images of
lfw-dev fold 1 with the MediaPipe mesh standing in for dlib's predictor (bench/fit_resnet_template.py).
With the mesh-placed chip this network scores 98.8% on fold 1 at dlib's fixed threshold (Euclidean 0.6), the
check that the rebuilt graph computes what dlib's network does.
"""

from __future__ import annotations

import cv2
import numpy as np

from facecloud.vision.alignment import similarity_from
from facecloud.vision.detector import DetectedFace
from facecloud.vision.embedder import normalise
from facecloud.vision.faceapi import RECOGNITION_SIZE

# YuNet's right eye, left eye, nose tip, right and left mouth corners in the 150x150 chip (fold 1 means).
YUNET_TEMPLATE_150 = np.array(
    [[46.34, 46.13], [101.21, 45.67], [74.33, 79.5], [50.75, 104.46], [98.09, 104.49]], dtype=np.float64
)


class ResNetEmbedder:
    """`session`: an ONNX Runtime session of the graph (thread-safe, as ONNX Runtime sessions are)."""

    def __init__(self, session, flip: bool = True) -> None:  # type: ignore[no-untyped-def]
        self._session = session
        self.flip = flip

    @staticmethod
    def align(bgr: np.ndarray, face: DetectedFace) -> np.ndarray:
        """The 150x150 BGR chip."""
        matrix = similarity_from(face.landmarks.astype(np.float64), YUNET_TEMPLATE_150)
        size = (RECOGNITION_SIZE, RECOGNITION_SIZE)
        return cv2.warpAffine(bgr, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def raw_features(self, chips: list[np.ndarray]) -> np.ndarray:
        """The network's 128-d descriptors (dlib's Euclidean metric) of BGR chips, one row each."""
        batch = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2RGB) for c in chips]).astype(np.float32)
        return self._session.run(None, {"rgb": np.ascontiguousarray(batch.transpose(0, 3, 1, 2))})[0]

    def embed_chip(self, chip: np.ndarray, flip: bool | None = None) -> np.ndarray:
        if self.flip if flip is None else flip:
            return normalise(self.raw_features([chip, cv2.flip(chip, 1)]).sum(axis=0))
        return normalise(self.raw_features([chip])[0])

    def embed(self, bgr: np.ndarray, face: DetectedFace, flip: bool | None = None) -> np.ndarray:
        return self.embed_chip(self.align(bgr, face), flip)
