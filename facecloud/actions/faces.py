"""Face management: CreateFace (billed, service person_mgmt) and DeleteFace (free)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from facecloud.actions.common import face_rect, load_image
from facecloud.actions.gallery_faces import MIN_FACE_SIZE, as_input
from facecloud.errors import ApiError
from facecloud.gallery.limits import MAX_FACES_PER_UPLOAD
from facecloud.gallery.records import FaceInput
from facecloud.gateway.registry import ActionContext, TencentRequest, action
from facecloud.vision.quality_control import check_quality

# Per-image RetCode of CreateFace, from the error an image raised.
RET_NO_FACE, RET_DECODE, RET_SIZE, RET_QUALITY, RET_NOT_SIMILAR = -1101, -1102, -1109, -1601, -1604
RETCODE_OF_ERROR = {
    "InvalidParameterValue.NoFaceInPhoto": RET_NO_FACE,
    "FailedOperation.FaceSizeTooSmall": RET_NO_FACE,
    "FailedOperation.ImageDecodeFailed": RET_DECODE,
    "FailedOperation.ImageDownloadError": RET_DECODE,
    "InvalidParameterValue.UrlIllegal": RET_DECODE,
    "InvalidParameterValue.ImageEmpty": RET_DECODE,
    "FailedOperation.ImageSizeExceed": RET_SIZE,
    "FailedOperation.ImageResolutionExceed": RET_SIZE,
    "FailedOperation.ImageResolutionTooSmall": RET_SIZE,
    "FailedOperation.FaceQualityNotQualified": RET_QUALITY,
}


class CreateFaceRequest(TencentRequest):
    PersonId: str
    Images: list[str] = Field(default_factory=list)
    Urls: list[str] = Field(default_factory=list)
    FaceMatchThreshold: float = 60.0
    QualityControl: int = Field(0, ge=0, le=4)
    NeedRotateDetection: int = Field(0, ge=0, le=1)


class DeleteFaceRequest(TencentRequest):
    PersonId: str
    FaceIds: list[str]


def _one_face(
    ctx: ActionContext, image: str | None, url: str | None, req: CreateFaceRequest, version: str
) -> tuple[FaceInput, dict]:
    img = load_image(ctx, image, url, req.NeedRotateDetection)
    face = ctx.runtime.vision.largest_face(img, MIN_FACE_SIZE)
    check_quality(ctx.runtime.vision, img, face, req.QualityControl)
    return as_input(ctx, img, face, version), face_rect(face)


def _similar_enough(
    ctx: ActionContext, known: np.ndarray, embedding: np.ndarray, threshold: float, version: str
) -> bool:
    """Tencent: only a face whose similarity to the person's faces exceeds FaceMatchThreshold is added
    (verification Score scale, best over the person's faces; threshold 0 accepts every face)."""
    if threshold <= 0 or not len(known):
        return True
    return ctx.runtime.vision.models.score(float(np.max(known @ embedding)), version) > threshold


@action("CreateFace", CreateFaceRequest, service="person_mgmt", heavy=True)
def create_face(req: CreateFaceRequest, ctx: ActionContext) -> dict:
    sources = [(None, u) for u in req.Urls] if req.Urls else [(i, None) for i in req.Images]
    if not sources:
        raise ApiError("InvalidParameterValue.ImageEmpty", "Images or Urls is required.", "图片为空。")
    if len(sources) > MAX_FACES_PER_UPLOAD:
        raise ApiError(
            "InvalidParameterValue.UploadFaceNumExceed",
            "At most 4 faces per CreateFace call.",
            "每次 CreateFace 最多上传 4 张人脸。",
        )
    if not 0 <= req.FaceMatchThreshold <= 100:
        raise ApiError(
            "InvalidParameterValue.FaceMatchThresholdIllegal",
            "FaceMatchThreshold is 0 to 100.",
            "FaceMatchThreshold 取值为 0 到 100。",
        )
    gallery = ctx.runtime.gallery
    person = gallery.person_vectors(ctx.account_id, req.PersonId)
    ret_codes, accepted, indexes, rects = [], [], [], []
    for number, (image, url) in enumerate(sources):
        try:
            face, rect = _one_face(ctx, image, url, req, person.face_model_version)
        except ApiError as error:
            if error.code not in RETCODE_OF_ERROR:
                raise
            ret_codes.append(RETCODE_OF_ERROR[error.code])
            continue
        if not _similar_enough(ctx, person.faces, face.embedding, req.FaceMatchThreshold, person.face_model_version):
            ret_codes.append(RET_NOT_SIMILAR)
            continue
        ret_codes.append(0)
        accepted.append(face)
        indexes.append(number)
        rects.append(rect)
    face_ids = gallery.add_faces(ctx.account_id, req.PersonId, accepted) if accepted else []
    return {
        "SucFaceNum": len(face_ids),
        "SucFaceIds": face_ids,
        "RetCode": ret_codes,
        "SucIndexes": indexes,
        "SucFaceRects": rects,
        "FaceModelVersion": person.face_model_version,
    }


@action("DeleteFace", DeleteFaceRequest)
def delete_face(req: DeleteFaceRequest, ctx: ActionContext) -> dict:
    deleted = ctx.runtime.gallery.delete_faces(ctx.account_id, req.PersonId, req.FaceIds)
    return {"SucDeletedNum": len(deleted), "SucFaceIds": deleted}
