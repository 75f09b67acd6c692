"""Masks over the lower face: the synthetic mask facecloud draws (test sets) and the Mask attribute's classifier.

The drawn mask (test sets; covering both faces was a CompareMaskFace alternative) is a polygon placed by
YuNet's 5 points: with e the mid-point of the eyes, r the vector from one eye to the other (landmark 0 to
landmark 1) and d the vector from e to the mid-point of the mouth corners, its top edge runs at e + 0.4 d
(across the nose, below the eyes) from e - r to e + r (past the cheeks), and it narrows to below the chin at
e + 1.9 d (e +- 0.55 r). It is filled with one flat colour and two darker pleat lines, like a surgical or
cloth mask.

The Mask classifier is a logistic regression on what a mask changes in the aligned 112x112 face crop (SFace's
alignment): the colour layout of the lower face (a 6x4 Lab grid), its colour against the upper face, and the
texture (Laplacian) of both halves (a mask is flatter than skin). Trained on lfw-dev faces with and without a
drawn mask (bench/fit_mask.py; weights in data/mask_classifier.json, with the people it was and was not trained
on). The logistic regression on the SFace embedding itself was tried first: 83% held out, not kept."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facecloud.vision.detector import DetectedFace

CLASSIFIER_FILE = Path(__file__).with_name("data") / "mask_classifier.json"
# BGR colours of the test set's masks (surgical blue, white, black, grey, pink, navy).
PALETTE = ((210, 180, 120), (235, 235, 235), (40, 40, 40), (150, 150, 150), (190, 170, 230), (90, 40, 20))
COMPARE_COLOUR = (128, 128, 128)  # the covering alternative of CompareMaskFace (measured, not kept)
TOP, CHIN = 0.4, 1.9


def mask_polygon(face: DetectedFace) -> np.ndarray:
    points = face.landmarks.astype(np.float64)
    eyes = (points[0] + points[1]) / 2
    across = points[1] - points[0]
    down = (points[3] + points[4]) / 2 - eyes
    shape = [(-1.0, TOP), (0.0, TOP - 0.1), (1.0, TOP), (0.95, 1.3), (0.55, CHIN), (-0.55, CHIN), (-0.95, 1.3)]
    return np.array([eyes + a * across + b * down for a, b in shape], dtype=np.float64)


def draw_mask(bgr: np.ndarray, face: DetectedFace, colour: tuple[int, int, int]) -> np.ndarray:
    """A copy of the image with a mask drawn over this face's lower half."""
    out = bgr.copy()
    polygon = mask_polygon(face)
    cv2.fillPoly(out, [np.round(polygon).astype(np.int32)], colour, lineType=cv2.LINE_AA)
    pleat = tuple(int(c * 0.75) for c in colour)
    left, right = polygon[0], polygon[2]
    thickness = max(1, int(np.linalg.norm(right - left) / 60))
    for depth in (0.3, 0.55):
        a = left + depth * (polygon[6] - left) * 1.6
        b = right + depth * (polygon[3] - right) * 1.6
        cv2.line(out, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)), pleat, thickness, cv2.LINE_AA)
    return out


def palette_colour(key: str) -> tuple[int, int, int]:
    """A colour of the palette chosen by a stable hash of the key (the same image always gets the same)."""
    return PALETTE[zlib.crc32(key.encode()) % len(PALETTE)]


def mask_features(crop: np.ndarray) -> np.ndarray:
    """Features of a 112x112 BGR crop aligned like SFace's (eyes at rows ~52, mouth at ~92)."""
    lab = cv2.cvtColor(crop, cv2.COLOR_BGR2LAB).astype(np.float32) / 255.0
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    lower, upper = lab[66:108, 18:94], lab[16:48, 18:94]  # below the nose tip; forehead and eyes
    texture = np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))
    texture_lower, texture_upper = float(texture[66:108, 18:94].mean()), float(texture[16:48, 18:94].mean())
    grid = cv2.resize(lower, (6, 4), interpolation=cv2.INTER_AREA).reshape(-1)
    gap = lower.reshape(-1, 3).mean(axis=0) - upper.reshape(-1, 3).mean(axis=0)
    spread = lower.reshape(-1, 3).std(axis=0)
    ratio = texture_lower / (texture_upper + 1e-3)
    return np.concatenate([grid, gap, spread, [texture_lower, texture_upper, ratio]]).astype(np.float64)


@dataclass(frozen=True)
class MaskClassifier:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def probability(self, crop: np.ndarray) -> float:
        x = (mask_features(crop) - self.mean) / self.scale
        return float(1.0 / (1.0 + np.exp(-(float(x @ self.weights) + self.bias))))

    @classmethod
    def load(cls, path: Path = CLASSIFIER_FILE) -> MaskClassifier:
        data = json.loads(path.read_text())
        arrays = (np.array(data[k], dtype=np.float64) for k in ("mean", "scale", "weights"))
        return cls(*arrays, float(data["bias"]))


def fit_logistic(
    features: np.ndarray, labels: np.ndarray, l2: float = 1e-3, steps: int = 2000
) -> tuple[np.ndarray, float]:
    """Plain L2-regularised logistic regression by gradient descent (features standardised)."""
    weights, bias = np.zeros(features.shape[1]), 0.0
    rate = 1.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(features @ weights + bias)))
        error = p - labels
        weights -= rate * (features.T @ error / len(labels) + l2 * weights)
        bias -= rate * float(error.mean())
    return weights, bias
