"""Similarity transforms (rotation, uniform scale, translation) that align face points onto a template."""

from __future__ import annotations

import cv2
import numpy as np

# Every point is an inlier: with 5 landmarks a robust estimator drops real points as outliers. On 400 LFW faces
# LMEDS moved the chip points of 20% (YuNet's 5 points onto the 150x150 ResNet template; 32% for the mesh's 5 onto
# dlib's 64x64 one) by more than 0.01 px, up to 10 px, away from the least-squares fit the templates and
# thresholds were measured with; this way they stay within 2e-6 px of it.
EVERY_POINT_AN_INLIER_PX = 1e9


def similarity_from(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity transform mapping src points onto dst, as a 2x3 matrix.

    OpenCV's estimateAffinePartial2D with every point an inlier: one sample, then its Levenberg-Marquardt
    refinement over all points ends at the least-squares (Umeyama) fit."""
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(src, dtype=np.float64),
        np.asarray(dst, dtype=np.float64),
        method=cv2.RANSAC,
        ransacReprojThreshold=EVERY_POINT_AN_INLIER_PX,
        maxIters=1,
    )
    if matrix is None:
        raise ValueError("no similarity transform maps these points (they coincide)")
    return matrix
