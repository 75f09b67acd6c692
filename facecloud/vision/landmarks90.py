"""Tencent's 90-point face layout (AnalyzeFace's FaceShape) and the 68-point iBUG layout, chosen from the
478-point mesh.

"Left"/"Right" follow the image: LeftEye is the eye on the left of the picture (the subject's right eye).
Every group runs in the order documented in docs/landmarks.md. The indices are MediaPipe face-mesh vertex numbers.
"""

from __future__ import annotations

import cv2
import numpy as np

# Contour: image-left cheek (eye height) -> chin (152) -> image-right cheek; 21 of the 36-point face oval.
FACE_PROFILE = (
    234,
    93,
    132,
    58,
    172,
    136,
    150,
    149,
    176,
    148,
    152,
    377,
    400,
    378,
    379,
    365,
    397,
    288,
    361,
    323,
    454,
)
# Eyes: outer corner, upper lid to the inner corner, lower lid back (8 of the 16-point eye contour).
LEFT_EYE = (33, 161, 159, 157, 133, 154, 145, 163)
RIGHT_EYE = (263, 388, 386, 384, 362, 381, 374, 390)
# Eyebrows: outer end, upper edge to the inner end, lower edge back (8 of 10).
LEFT_EYEBROW = (70, 105, 66, 107, 55, 65, 52, 46)
RIGHT_EYEBROW = (300, 334, 296, 336, 285, 295, 282, 276)
# Mouth: outer lip contour from the image-left corner, clockwise (14), then the inner contour (8).
MOUTH = (61, 185, 40, 37, 0, 267, 270, 409, 291, 321, 314, 17, 84, 91, 78, 81, 13, 311, 308, 402, 14, 178)
# Nose: bridge from between the eyes to the tip (6), then the lower outline from the image-left wing (7).
NOSE = (168, 6, 197, 195, 5, 4, 129, 98, 97, 2, 326, 327, 358)
LEFT_PUPIL = (468,)  # iris centre
RIGHT_PUPIL = (473,)

GROUPS: dict[str, tuple[int, ...]] = {
    "FaceProfile": FACE_PROFILE,
    "LeftEye": LEFT_EYE,
    "RightEye": RIGHT_EYE,
    "LeftEyeBrow": LEFT_EYEBROW,
    "RightEyeBrow": RIGHT_EYEBROW,
    "Mouth": MOUTH,
    "Nose": NOSE,
    "LeftPupil": LEFT_PUPIL,
    "RightPupil": RIGHT_PUPIL,
}
GROUP_SIZES = {
    "FaceProfile": 21,
    "LeftEye": 8,
    "RightEye": 8,
    "LeftEyeBrow": 8,
    "RightEyeBrow": 8,
    "Mouth": 22,
    "Nose": 13,
    "LeftPupil": 1,
    "RightPupil": 1,
}

# iBUG 300-W 68 points (0-based) from mesh vertices; used only to measure accuracy against 68-point ground
# truth. The jaw entries (0-16) are the fixed-vertex jaw (`ibug68(xy, jaw="vertices")`); by default `ibug68`
# replaces them by `silhouette_jaw` (the visible outline, resampled), keeping only 127/356/152 as its anchors.
IBUG68 = (
    # jaw 0-16, image-left to image-right; 0 and 16 (127, 356) are the oval vertices level with the outer eye corners
    127,
    234,
    93,
    132,
    58,
    136,
    150,
    176,
    152,
    400,
    379,
    365,
    288,
    361,
    323,
    454,
    356,
    # eyebrows 17-21 (image-left, outer to inner), 22-26 (image-right, inner to outer): upper edge
    70,
    63,
    105,
    66,
    107,
    336,
    296,
    334,
    293,
    300,
    # nose bridge 27-30, lower nose 31-35
    168,
    197,
    5,
    4,
    98,
    97,
    2,
    326,
    327,
    # eyes 36-41 (image-left), 42-47 (image-right): outer corner, upper lid, inner corner, lower lid
    33,
    160,
    158,
    133,
    153,
    144,
    362,
    385,
    387,
    263,
    373,
    380,
    # outer lip 48-59, inner lip 60-67
    61,
    39,
    37,
    0,
    267,
    269,
    291,
    405,
    314,
    17,
    84,
    181,
    78,
    82,
    13,
    312,
    308,
    317,
    14,
    87,
)
IBUG_OUTER_EYE_CORNERS = (36, 45)


def face_points(xy: np.ndarray) -> dict[str, np.ndarray]:
    """The 90 points as float arrays per group, in image coordinates."""
    xy = np.asarray(xy, dtype=np.float64)[:, :2]
    return {name: xy[list(indices)] for name, indices in GROUPS.items()}


def face_shape(xy: np.ndarray) -> dict[str, list[dict[str, int]]]:
    """AnalyzeFace's FaceShape: integer Point{X, Y} per group, in image coordinates."""
    return {
        name: [{"X": int(round(float(x))), "Y": int(round(float(y)))} for x, y in points]
        for name, points in face_points(xy).items()
    }


IBUG_JAW_ENDS = (127, 356)  # oval vertices level with the outer eye corners (canonical face)
IBUG_CHIN = 152
EYE_OUTER = (33, 263)


def ibug68(xy: np.ndarray, jaw: str = "silhouette") -> np.ndarray:
    """The 68 iBUG points. `jaw="silhouette"` places 0-16 by the annotation protocol (see `silhouette_jaw`);
    `jaw="vertices"` takes the fixed mesh vertices of `IBUG68` (the mapping before the rule)."""
    xy = np.asarray(xy, dtype=np.float64)[:, :2]
    points = xy[list(IBUG68)].copy()
    if jaw == "silhouette":
        points[:17] = silhouette_jaw(xy)
    elif jaw != "vertices":
        raise ValueError(f"unknown jaw rule {jaw!r}")
    return points


def silhouette_jaw(xy: np.ndarray) -> np.ndarray:
    """iBUG jaw points 0-16 on the visible face boundary, evenly spaced along it on each side.

    300-W marks the jaw on the face's visible outline: 0 and 16 level with the eyes, 8 at the chin, the
    others spread along the outline between them. The mesh's own oval vertices are fixed on the 3-D surface,
    so on a turned face the far side's oval rotates behind the cheek and lies inside the outline. Rule (no
    fitted parameter): in the face frame (x along the outer eye corners 33 -> 263, y down), take the convex
    hull of the 468 projected mesh vertices as the outline, split it at the chin (the hull vertex furthest
    along the direction of vertex 152), cut each side at the level of its end vertex (127 image-left, 356
    image-right) and resample each side at 9 equal arc-length steps from the end to the chin.
    """
    xy = np.asarray(xy, dtype=np.float64)[:, :2]
    left_eye, right_eye = xy[EYE_OUTER[0]], xy[EYE_OUTER[1]]
    origin = (left_eye + right_eye) / 2
    axis_x = (right_eye - left_eye) / np.linalg.norm(right_eye - left_eye)
    frame = np.stack([axis_x, np.array([-axis_x[1], axis_x[0]])])
    face = (xy - origin) @ frame.T
    hull = cv2.convexHull(face[:468].astype(np.float32)).reshape(-1, 2).astype(np.float64)
    chin = int(np.argmax(hull @ (face[IBUG_CHIN] / np.linalg.norm(face[IBUG_CHIN]))))
    loop = np.roll(hull, -chin, axis=0)
    loop = np.vstack([loop, loop[:1]])
    towards_right, towards_left = (loop, loop[::-1]) if loop[1][0] > loop[-2][0] else (loop[::-1], loop)
    left = _resample(_up_to_level(towards_left, face[IBUG_JAW_ENDS[0]][1])[::-1], 9)
    right = _resample(_up_to_level(towards_right, face[IBUG_JAW_ENDS[1]][1]), 9)
    return np.vstack([left, right[1:]]) @ frame + origin


def _up_to_level(path: np.ndarray, level: float) -> np.ndarray:
    """The path (starting at the chin, going up) until it rises to y = level (cut there)."""
    kept = [path[0]]
    for start, end in zip(path[:-1], path[1:], strict=True):
        if end[1] <= level:
            kept.append(start + (start[1] - level) / (start[1] - end[1]) * (end - start))
            break
        kept.append(end)
    return np.array(kept)


def _resample(path: np.ndarray, count: int) -> np.ndarray:
    lengths = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    at = np.linspace(0.0, lengths[-1], count)
    return np.stack([np.interp(at, lengths, path[:, 0]), np.interp(at, lengths, path[:, 1])], axis=1)
