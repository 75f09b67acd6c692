"""CompareFace (price list: 人脸比对, service "compare"): similarity Score 0..100 of the faces of two images.

Score 40/50/60 = false-accept rate 1e-3/1e-4/1e-5 (facecloud.vision.calibration); > 50 is "the same person"."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from facecloud.actions.common import load_image, model_version, require_image
from facecloud.actions.detect import no_face
from facecloud.gateway.registry import ActionContext, TencentRequest, action
from facecloud.vision.detector import DetectedFace
from facecloud.vision.image import DecodedImage
from facecloud.vision.quality_control import check_quality
from facecloud.vision.versions import VERSIONS

MODEL_VERSIONS = VERSIONS
MIN_FACE_SIZE = 34
MOST_CONFIDENT, LARGEST = 0, 1


class CompareFaceRequest(TencentRequest):
    ImageA: str | None = None
    ImageB: str | None = None
    UrlA: str | None = None
    UrlB: str | None = None
    FaceModelVersion: str | None = None
    QualityControl: int = Field(0, ge=0, le=4)
    NeedRotateDetection: int = Field(0, ge=0, le=1)
    FaceMatchingStrategy: int = Field(MOST_CONFIDENT, ge=0, le=1)


def chosen_face(ctx: ActionContext, img: DecodedImage, strategy: int) -> DetectedFace:
    faces = ctx.runtime.vision.detect(img, max_faces=120, min_face_size=MIN_FACE_SIZE)
    if not faces:
        raise no_face()
    if strategy == LARGEST:
        return faces[0]  # detect() orders largest first
    return max(faces, key=lambda face: face.score)


@action("CompareFace", CompareFaceRequest, service="compare", heavy=True)
def compare_face(req: CompareFaceRequest, ctx: ActionContext) -> dict:
    version = model_version(req.FaceModelVersion, MODEL_VERSIONS)
    vision = ctx.runtime.vision

    sides = {side: (f"Image{side}", f"Url{side}") for side in "AB"}
    for fields in sides.values():  # both named before any work
        require_image(getattr(req, fields[0]), getattr(req, fields[1]), fields)

    def embedding(side: str) -> np.ndarray:
        fields = sides[side]
        img = load_image(ctx, getattr(req, fields[0]), getattr(req, fields[1]), req.NeedRotateDetection, fields)
        face = chosen_face(ctx, img, req.FaceMatchingStrategy)
        check_quality(vision, img, face, req.QualityControl)
        return vision.models.embed(img.bgr, face, version)

    a, b = vision.map(embedding, ["A", "B"])
    # Each version has its own model and calibration (facecloud.vision.versions); both on Tencent's 3.0 scale.
    return {"Score": round(vision.models.score(float(a @ b), version), 2), "FaceModelVersion": version}
