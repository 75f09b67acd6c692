"""Tencent's 90-point face layout (AnalyzeFace's FaceShape) and the 68-point iBUG layout, chosen from the
478-point mesh.

"Left"/"Right" follow the image: LeftEye is the eye on the left of the picture (the subject's right eye).
Every group runs in the order documented in docs/landmarks.md. The indices are MediaPipe face-mesh vertex
numbers.
"""

from __future__ import annotations

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
# truth.
# (An arc-length resampling of the oval was tried for the jaw and measured worse on turned faces: the far side
# of
# the oval is foreshortened in the image.)
IBUG68 = (
    # jaw 0-16, image-left to image-right; 0 and 16 (127, 356) are the oval vertices level with the outer eye
    # corners
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


def ibug68(xy: np.ndarray) -> np.ndarray:
    return np.asarray(xy, dtype=np.float64)[list(IBUG68), :2]
