"""Emotion: the 7-class expression network of npm @vladmandic/face-api (facecloud.vision.faceapi).

Input as face-api gives it: the face's box made square about its centre (side = the longer edge), resized to
112x112, RGB. Its classes map onto Tencent's Emotion types (0 自然 neutral, 1 高兴 happy, 2 惊讶 surprised,
3 生气 angry, 4 悲伤 sad, 5 厌恶 disgusted, 6 害怕 fearful)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facecloud.vision.faceapi import EXPRESSION_CLASSES, EXPRESSION_SIZE
from facecloud.vision.mesh import FaceBox

TENCENT_EMOTION_TYPE = {"neutral": 0, "happy": 1, "surprised": 2, "angry": 3, "sad": 4, "disgusted": 5, "fearful": 6}


@dataclass(frozen=True)
class Emotion:
    type: int  # Tencent's Emotion type
    probability: float
    probabilities: dict[str, float]  # per face-api class


def square_crop(bgr: np.ndarray, face: FaceBox, size: int = EXPRESSION_SIZE) -> np.ndarray:
    """The RGB size x size crop of the square about the face box (pixels outside the image are black)."""
    side = max(face.width, face.height)
    left, top = face.x + face.width / 2 - side / 2, face.y + face.height / 2 - side / 2
    scale = size / max(side, 1)
    matrix = np.array([[scale, 0, -left * scale], [0, scale, -top * scale]], dtype=np.float64)
    crop = cv2.warpAffine(bgr, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


class ExpressionModel:
    def __init__(self, session) -> None:  # type: ignore[no-untyped-def]
        self._session = session

    def probabilities(self, bgr: np.ndarray, faces: list[FaceBox]) -> np.ndarray:
        if not faces:
            return np.zeros((0, len(EXPRESSION_CLASSES)), np.float32)
        batch = np.stack([square_crop(bgr, face) for face in faces]).astype(np.float32).transpose(0, 3, 1, 2)
        return self._session.run(None, {"rgb": np.ascontiguousarray(batch)})[0]

    def emotions(self, bgr: np.ndarray, faces: list[FaceBox]) -> list[Emotion]:
        result = []
        for row in self.probabilities(bgr, faces):
            best = int(np.argmax(row))
            name = EXPRESSION_CLASSES[best]
            probs = {c: float(p) for c, p in zip(EXPRESSION_CLASSES, row, strict=True)}
            result.append(Emotion(TENCENT_EMOTION_TYPE[name], float(row[best]), probs))
        return result
