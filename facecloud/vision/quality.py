"""FaceQualityInfo from measurements, no model (formula documented in docs/attributes.md).

- Sharpness: variance of the Laplacian of the face (grey, the mesh's bounding square resized to 112x112),
  mapped to 0..100 as 100 * log10(1 + v) / log10(1 + 1000) (v >= 1000 -> 100).
- Brightness: mean luminance (BT.601 Y) inside the face oval, as 0..100 (= Y / 255 * 100).
- Completeness per part: the share of that part's mesh points that lie inside the image, 0..100. The mesh
  model has no per-point visibility output, so occlusion by objects is NOT measured, only faces cut by the
  image border.
- Score = 0.4 * Sharpness + 0.2 * brightness_ok + 0.2 * min(Completeness) + 0.2 * pose_ok, where brightness_ok
  is 100 inside Tencent's normal band [30, 70] and drops by 3 per point outside it, and pose_ok is 100 up to
  10 degrees of yaw/pitch and falls linearly to 0 at 60 degrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from facecloud.vision.mesh import FaceMesh, HeadPose

SHARPNESS_SIDE = 112
SHARPNESS_FULL_VARIANCE = 1000.0
# The 36-point face oval of the mesh, in order (used as the face region for brightness).
FACE_OVAL = (
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
)
PARTS: dict[str, tuple[int, ...]] = {
    "Eyebrow": (70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276),
    "Eye": (33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380, 468, 473),
    "Nose": (168, 6, 197, 195, 5, 4, 1, 98, 97, 2, 326, 327),
    "Cheek": (234, 93, 132, 58, 454, 323, 361, 288, 116, 345, 205, 425),
    "Mouth": (61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91),
    "Chin": (152, 148, 176, 377, 400, 199, 175),
}


@dataclass(frozen=True)
class FaceQuality:
    score: int
    sharpness: int
    brightness: int
    completeness: dict[str, int]  # Eyebrow, Eye, Nose, Cheek, Mouth, Chin


def sharpness(grey: np.ndarray, mesh: FaceMesh) -> int:
    low, high = mesh.xy.min(axis=0), mesh.xy.max(axis=0)
    side = float(max(high - low))
    centre = (low + high) / 2
    scale = SHARPNESS_SIDE / max(side, 1.0)
    matrix = np.array(
        [
            [scale, 0, SHARPNESS_SIDE / 2 - scale * centre[0]],
            [0, scale, SHARPNESS_SIDE / 2 - scale * centre[1]],
        ]
    )
    face = cv2.warpAffine(
        grey, matrix, (SHARPNESS_SIDE, SHARPNESS_SIDE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT
    )
    variance = float(cv2.Laplacian(face, cv2.CV_64F).var())
    return int(round(min(100.0, 100 * math.log10(1 + variance) / math.log10(1 + SHARPNESS_FULL_VARIANCE))))


def brightness(grey: np.ndarray, mesh: FaceMesh) -> int:
    """Mean grey level inside the face oval, 0-100. Only the oval's bounding box is masked and read: on a 12-MP
    photo a mask of the whole image cost ~7 ms per face."""
    oval = np.round(mesh.xy[list(FACE_OVAL)]).astype(np.int32)
    x, y, width, height = cv2.boundingRect(oval)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + width, grey.shape[1]), min(y + height, grey.shape[0])
    if x1 <= x0 or y1 <= y0:
        return 0
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    cv2.fillPoly(mask, [oval - np.int32([x0, y0])], 255)
    if not mask.any():
        return 0
    return int(round(float(cv2.mean(grey[y0:y1, x0:x1], mask=mask)[0]) / 255 * 100))


def completeness(mesh: FaceMesh, width: int, height: int) -> dict[str, int]:
    xy = mesh.xy
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    return {part: int(round(100 * float(inside[list(indices)].mean()))) for part, indices in PARTS.items()}


def _brightness_ok(value: int) -> float:
    outside = max(30 - value, value - 70, 0)
    return max(0.0, 100.0 - 3.0 * outside)


def _pose_ok(pose: HeadPose) -> float:
    turn = max(abs(pose.yaw), abs(pose.pitch))
    return 100.0 * min(1.0, max(0.0, 1.0 - (turn - 10.0) / 50.0))


def assess(grey: np.ndarray, mesh: FaceMesh, pose: HeadPose) -> FaceQuality:
    sharp = sharpness(grey, mesh)
    bright = brightness(grey, mesh)
    parts = completeness(mesh, grey.shape[1], grey.shape[0])
    score = 0.4 * sharp + 0.2 * _brightness_ok(bright) + 0.2 * min(parts.values()) + 0.2 * _pose_ok(pose)
    return FaceQuality(int(round(score)), sharp, bright, parts)
