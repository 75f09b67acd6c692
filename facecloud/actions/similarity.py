"""DetectFaceSimilarity (price list: 人脸比对, service "compare"): the similarity Score of the faces of two images.

Tencent documents this Score as 0..100 with a fixed threshold of 70 at a false-accept rate of 1e-4. CompareFace's
scale puts FAR 1e-4 at 50 and gives 10 points per decade of FAR (facecloud.vision.calibration), so this Score is
CompareFace's shifted by 20 on the calibrated range: 60/70/80/90 = FAR 1e-3/1e-4/1e-5/1e-6, 100 at 1e-7 and
beyond; below CompareFace 10 (every impostor passes) it is scaled linearly down to 0."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from facecloud.actions.compare import MOST_CONFIDENT, CompareFaceRequest, compare_face
from facecloud.gateway.registry import ActionContext, TencentRequest, action

SHIFT = 20.0
CALIBRATED_FROM = 10.0  # CompareFace score at FAR 1 (calibration.score_for_far(1))


class DetectFaceSimilarityRequest(TencentRequest):
    ImageA: str | None = None
    ImageB: str | None = None
    UrlA: str | None = None
    UrlB: str | None = None
    QualityControl: int = Field(0, ge=0, le=4)


def similarity_score(compare_score: float) -> float:
    if compare_score < CALIBRATED_FROM:
        return compare_score * (CALIBRATED_FROM + SHIFT) / CALIBRATED_FROM
    return min(100.0, compare_score + SHIFT)


@action("DetectFaceSimilarity", DetectFaceSimilarityRequest, service="compare", heavy=True)
def detect_face_similarity(req: DetectFaceSimilarityRequest, ctx: ActionContext) -> dict[str, Any]:
    compared = compare_face(
        CompareFaceRequest(
            ImageA=req.ImageA,
            ImageB=req.ImageB,
            UrlA=req.UrlA,
            UrlB=req.UrlB,
            QualityControl=req.QualityControl,
            FaceMatchingStrategy=MOST_CONFIDENT,
        ),
        ctx,
    )
    return {"Score": round(similarity_score(compared["Score"]), 2)}
