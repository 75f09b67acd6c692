"""QualityControl (0..4) of the comparison, verification and enrolment actions, on the face-quality Score.

Tencent describes the levels in words only (1 low ... 4 very high). facecloud maps each level to a minimum
FaceQualityInfo.Score (facecloud.vision.quality: sharpness, brightness, completeness, pose); level 4 is
Tencent's own enrolment recommendation (Score >= 70)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facecloud.errors import ApiError

if TYPE_CHECKING:
    from facecloud.vision.detector import DetectedFace
    from facecloud.vision.image import DecodedImage
    from facecloud.vision.pipeline import Pipeline

MIN_QUALITY_SCORE = {0: 0, 1: 25, 2: 40, 3: 55, 4: 70}


def face_quality_score(pipeline: Pipeline, img: DecodedImage, face: DetectedFace) -> int:
    analyzer = pipeline.analyzer
    return analyzer.quality(img.bgr, analyzer.meshes(img.bgr, [face]))[0].score


def check_quality(pipeline: Pipeline, img: DecodedImage, face: DetectedFace, level: int) -> None:
    """FailedOperation.FaceQualityNotQualified when the face is below the level's minimum (0: no check)."""
    minimum = MIN_QUALITY_SCORE[level]
    if minimum <= 0:
        return
    score = face_quality_score(pipeline, img, face)
    if score < minimum:
        raise ApiError(
            "FailedOperation.FaceQualityNotQualified",
            f"Face quality {score} is below {minimum}, the minimum of QualityControl {level}.",
            "图片质量不符要求。",
        )
