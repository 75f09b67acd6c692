"""AnalyzeDenseLandmarks' DenseFaceShape: Tencent's dense parts chosen from the 478-point mesh.

Tencent documents the parts but not their point counts ("XX 点"); facecloud's counts are below and in
docs/landmarks.md. "Left"/"Right" follow the image, as in the 90-point layout (facecloud.vision.landmarks90):
LeftEye is the eye on the left of the picture (the subject's right eye). The indices are MediaPipe face-mesh vertex
numbers, taken from the mesh's published contour annotations (eyes, brows, lips, silhouette) and its midline.
"""

from __future__ import annotations

import numpy as np

# Eye outline, 16: outer corner, lower lid to the inner corner, then the upper lid back.
LEFT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
RIGHT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
# Eyebrow outline, 14: upper edge from the outer end, then the lower edge back.
LEFT_EYEBROW = (156, 70, 63, 105, 66, 107, 55, 193, 65, 52, 53, 46, 124, 35)
RIGHT_EYEBROW = (383, 300, 293, 334, 296, 336, 285, 417, 295, 282, 283, 276, 353, 265)
# Lips, 20 each: from the image-left corner along the lower lip, then the upper lip back (counter-clockwise on
# screen, as Tencent orders them).
MOUTH_OUTSIDE = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
MOUTH_INSIDE = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
# Nose, 24: the bridge from between the eyes to the tip, the base, then the wings and the nostril outline.
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 129, 358, 64, 294, 48, 278, 115, 344, 220, 440)
# Pupils, 5: the iris centre, then four points on the iris edge.
LEFT_PUPIL = (468, 469, 470, 471, 472)
RIGHT_PUPIL = (473, 474, 475, 476, 477)
# Central axis, 28: the face's midline from the top of the forehead to the chin.
CENTRAL_AXIS = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 164, 0, 11, 12, 13, 14, 15, 16, 17, 18, 200, 199,
                175, 152)  # fmt: skip
# Chin, 15: the lower face outline from below the image-left mouth corner to below the image-right one.
CHIN = (58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288)
# Eye bags, 18: the two rings of vertices under the lower lid, from the outer side inwards.
LEFT_EYE_BAGS = (226, 31, 228, 229, 230, 231, 232, 233, 244, 143, 111, 117, 118, 119, 120, 121, 128, 245)
RIGHT_EYE_BAGS = (446, 261, 448, 449, 450, 451, 452, 453, 464, 372, 340, 346, 347, 348, 349, 350, 357, 465)
# Forehead, 20: the upper face outline from the image-left temple to the right one, then a row above the brows.
FOREHEAD = (21, 54, 103, 67, 109, 10, 338, 297, 332, 284, 251, 68, 104, 69, 108, 151, 337, 299, 333, 298)

PARTS: dict[str, tuple[int, ...]] = {
    "LeftEye": LEFT_EYE,
    "RightEye": RIGHT_EYE,
    "LeftEyeBrow": LEFT_EYEBROW,
    "RightEyeBrow": RIGHT_EYEBROW,
    "MouthOutside": MOUTH_OUTSIDE,
    "MouthInside": MOUTH_INSIDE,
    "Nose": NOSE,
    "LeftPupil": LEFT_PUPIL,
    "RightPupil": RIGHT_PUPIL,
    "CentralAxis": CENTRAL_AXIS,
    "Chin": CHIN,
    "LeftEyeBags": LEFT_EYE_BAGS,
    "RightEyeBags": RIGHT_EYE_BAGS,
    "Forehead": FOREHEAD,
}


def dense_points(xy: np.ndarray) -> dict[str, list[dict[str, int]]]:
    """Integer Point{X, Y} per part, in image coordinates."""
    xy = np.asarray(xy, dtype=np.float64)[:, :2]
    return {
        name: [{"X": int(round(float(x))), "Y": int(round(float(y)))} for x, y in xy[list(indices)]]
        for name, indices in PARTS.items()
    }
