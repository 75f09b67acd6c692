"""Static liveness: DetectLiveFace, DetectLiveFaceAccurate (price list 人脸静态活体检测, service "liveness").

Both score the largest face of one photo with the MiniFASNet pair (facecloud.vision.liveness): Score is 0..100
(100 x the fused live probability); IsLiveness / the recommended threshold is Score >= 40."""

from __future__ import annotations

from typing import Any

from facecloud.actions.common import FACE_MODEL_VERSION, load_image, model_version
from facecloud.actions.detect import no_face
from facecloud.errors import ApiError
from facecloud.gateway.registry import ActionContext, TencentRequest, action

ACCURATE_MIN_FACE_PX = 100  # Tencent: 人脸尺寸大于100X100像素
DETECT_MIN_FACE_PX = 34  # Tencent's default MinFaceSize
LIVE_FACE_VERSIONS = ("2.0", "3.0")


class DetectLiveFaceRequest(TencentRequest):
    Image: str | None = None
    Url: str | None = None
    FaceModelVersion: str | None = None


class DetectLiveFaceAccurateRequest(TencentRequest):
    Image: str | None = None
    Url: str | None = None
    FaceModelVersion: str | None = None


def _live_score(ctx: ActionContext, image: str | None, url: str | None, min_face_px: int) -> float:
    vision = ctx.runtime.vision
    vision.liveness.ensure_ready()  # without the weights: say how to install them, before any other work
    decoded = load_image(ctx, image, url)
    faces = vision.detect(decoded, max_faces=1, min_face_size=DETECT_MIN_FACE_PX)
    if not faces:
        raise no_face()
    face = faces[0]
    if min(face.width, face.height) < min_face_px:
        raise ApiError(
            "FailedOperation.FaceSizeTooSmall",
            f"The face is {face.width}x{face.height} px; at least {min_face_px}x{min_face_px} is required.",
            f"人脸尺寸过小，需大于{min_face_px}x{min_face_px}像素。",
        )
    return vision.liveness.predict(decoded.bgr, (face.x, face.y, face.width, face.height)).score


@action("DetectLiveFace", DetectLiveFaceRequest, service="liveness")
def detect_live_face(req: DetectLiveFaceRequest, ctx: ActionContext) -> dict[str, Any]:
    from facecloud.vision.liveness import RECOMMENDED_THRESHOLD

    version = model_version(req.FaceModelVersion, LIVE_FACE_VERSIONS)
    score = _live_score(ctx, req.Image, req.Url, min_face_px=DETECT_MIN_FACE_PX)
    return {"Score": score, "FaceModelVersion": version, "IsLiveness": score >= RECOMMENDED_THRESHOLD}


@action("DetectLiveFaceAccurate", DetectLiveFaceAccurateRequest, service="liveness")
def detect_live_face_accurate(req: DetectLiveFaceAccurateRequest, ctx: ActionContext) -> dict[str, Any]:
    version = model_version(req.FaceModelVersion, (FACE_MODEL_VERSION,))
    score = _live_score(ctx, req.Image, req.Url, min_face_px=ACCURATE_MIN_FACE_PX)
    return {"Score": score, "FaceModelVersion": version}
