"""CompareMaskFace (price list: 人脸比对, service "compare"): Score 0..100 of two faces of which one or both may
wear a mask. Tencent serves it with "3.0" only.

It answers with the "3.0" model and calibration (CompareFace's 40/50/60 = FAR 1e-3/1e-4/1e-5): on facecloud's
masked test set (a mask drawn over one face of each lfw-dev pair, docs/vision.md) that measured better than the
alternatives tried, covering both faces with the same drawn mask (with a calibration of its own), SFace alone or
the ResNet alone; bench/fit_versions.py measures all of them."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from facecloud.actions.common import load_image, model_version
from facecloud.actions.compare import MOST_CONFIDENT, chosen_face
from facecloud.gateway.registry import ActionContext, TencentRequest, action
from facecloud.vision.quality_control import check_quality

MASK_VERSIONS = ("3.0",)


class CompareMaskFaceRequest(TencentRequest):
    ImageA: str | None = None
    ImageB: str | None = None
    UrlA: str | None = None
    UrlB: str | None = None
    FaceModelVersion: str | None = None
    QualityControl: int = Field(0, ge=0, le=4)


@action("CompareMaskFace", CompareMaskFaceRequest, service="compare")
def compare_mask_face(req: CompareMaskFaceRequest, ctx: ActionContext) -> dict:
    version = model_version(req.FaceModelVersion, MASK_VERSIONS)
    vision = ctx.runtime.vision

    def embedding(source: tuple[str | None, str | None]) -> np.ndarray:
        img = load_image(ctx, source[0], source[1])
        face = chosen_face(ctx, img, MOST_CONFIDENT)
        check_quality(vision, img, face, req.QualityControl)
        return vision.models.embed(img.bgr, face, version)

    a, b = vision.map(embedding, [(req.ImageA, req.UrlA), (req.ImageB, req.UrlB)])
    return {"Score": round(vision.models.score(float(a @ b), version), 2), "FaceModelVersion": version}
