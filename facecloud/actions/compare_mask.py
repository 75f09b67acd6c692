"""CompareMaskFace (price list: 人脸比对, service "compare"): Score 0..100 of two faces of which one or both may
wear a mask. Tencent serves it with "3.0" only.

It answers with the "3.0" model and calibration (CompareFace's 40/50/60 = FAR 1e-3/1e-4/1e-5): on facecloud's
masked test set (a mask drawn over one face of each lfw-dev pair, docs/vision.md) that measured better than the
alternatives tried, covering both faces with the same drawn mask (with a calibration of its own), SFace alone or
the ResNet alone; bench/fit_versions.py measures all of them."""

from __future__ import annotations

from facecloud.actions.common import model_version
from facecloud.actions.compare import MOST_CONFIDENT, CompareFaceRequest, compare_face
from facecloud.gateway.registry import ActionContext, action

MASK_VERSIONS = ("3.0",)


class CompareMaskFaceRequest(CompareFaceRequest):
    """CompareFace's fields but NeedRotateDetection and FaceMatchingStrategy (the most confident face is used)."""


@action("CompareMaskFace", CompareMaskFaceRequest, service="compare", heavy=True)
def compare_mask_face(req: CompareMaskFaceRequest, ctx: ActionContext) -> dict:
    version = model_version(req.FaceModelVersion, MASK_VERSIONS)
    compared = req.model_copy(
        update={"FaceModelVersion": version, "FaceMatchingStrategy": MOST_CONFIDENT, "NeedRotateDetection": 0}
    )
    return compare_face(compared, ctx)
