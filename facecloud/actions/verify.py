"""Verification (人脸验证, service "verify"): VerifyFace (best Score over the person's faces) and VerifyPerson (the
fused person feature, facecloud.gallery.fusion). Scores on the comparison scale (40/50/60 = FAR 1e-3/1e-4/1e-5); IsMatch
at Score >= 60."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from facecloud.actions.common import ImageRequest
from facecloud.actions.gallery_faces import enrolment_face
from facecloud.gallery.calibration import VERIFY_MATCH_SCORE
from facecloud.gateway.registry import ActionContext, action


class VerifyRequest(ImageRequest):
    PersonId: str
    QualityControl: int = Field(0, ge=0, le=4)


def _verify(req: VerifyRequest, ctx: ActionContext, fused: bool) -> dict:
    person = ctx.runtime.gallery.person_vectors(ctx.account_id, req.PersonId)
    version = person.face_model_version
    face, _ = enrolment_face(ctx, req.Image, req.Url, req.NeedRotateDetection, req.QualityControl, version)
    vectors = person.feature[None] if fused else person.faces
    cosine = float(np.max(vectors @ face.embedding))
    score = round(ctx.runtime.vision.models.score(cosine, version), 2)
    return {
        "Score": score,
        "IsMatch": bool(score >= VERIFY_MATCH_SCORE),
        "FaceModelVersion": person.face_model_version,
    }


@action("VerifyFace", VerifyRequest, service="verify", heavy=True)
def verify_face(req: VerifyRequest, ctx: ActionContext) -> dict:
    return _verify(req, ctx, fused=False)


@action("VerifyPerson", VerifyRequest, service="verify", heavy=True)
def verify_person(req: VerifyRequest, ctx: ActionContext) -> dict:
    return _verify(req, ctx, fused=True)
