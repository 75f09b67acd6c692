"""AnalyzeFace and AnalyzeDenseLandmarks (price list: 五官定位, service "landmarks"): Tencent's 90 facial points,
and the dense points per part, of each face.

Mode 0: up to 10 faces (largest first); Mode 1: the largest face. The points come from the 478-point mesh
(facecloud.vision.landmarks90, docs/landmarks.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from facecloud.actions.common import ImageRequest, load_image, model_version
from facecloud.actions.detect import DETECT_FACE_VERSIONS, face_box, no_face
from facecloud.gateway.registry import ActionContext, action
from facecloud.vision.dense_landmarks import dense_points
from facecloud.vision.landmarks90 import face_shape

MAX_FACES = 10
MIN_FACE_SIZE = 34


class AnalyzeFaceRequest(ImageRequest):
    Mode: int = Field(0, ge=0, le=1)
    FaceModelVersion: str | None = None


@action("AnalyzeFace", AnalyzeFaceRequest, service="landmarks")
def analyze_face(req: AnalyzeFaceRequest, ctx: ActionContext) -> dict[str, Any]:
    version = model_version(req.FaceModelVersion, DETECT_FACE_VERSIONS)
    vision = ctx.runtime.vision
    image = load_image(ctx, req.Image, req.Url, req.NeedRotateDetection)
    faces = vision.detect(image, max_faces=1 if req.Mode == 1 else MAX_FACES, min_face_size=MIN_FACE_SIZE)
    if not faces:
        raise no_face()
    meshes = vision.analyzer.meshes(image.bgr, faces)
    return {
        "ImageWidth": image.width,
        "ImageHeight": image.height,
        "FaceShapeSet": [face_shape(mesh.xy) for mesh in meshes],
        "FaceModelVersion": version,
    }


DENSE_MAX_FACES = 5
DENSE_FACE_VERSIONS = ("3.0",)


class AnalyzeDenseLandmarksRequest(ImageRequest):
    Mode: int = Field(0, ge=0, le=1)
    FaceModelVersion: str | None = None


@action("AnalyzeDenseLandmarks", AnalyzeDenseLandmarksRequest, service="landmarks")
def analyze_dense_landmarks(req: AnalyzeDenseLandmarksRequest, ctx: ActionContext) -> dict[str, Any]:
    """Dense points per part (facecloud.vision.dense_landmarks); Mode 0: up to 5 faces, Mode 1: the largest."""
    version = model_version(req.FaceModelVersion, DENSE_FACE_VERSIONS)
    vision = ctx.runtime.vision
    image = load_image(ctx, req.Image, req.Url, req.NeedRotateDetection)
    faces = vision.detect(image, max_faces=1 if req.Mode == 1 else DENSE_MAX_FACES, min_face_size=MIN_FACE_SIZE)
    if not faces:
        raise no_face()
    meshes = vision.analyzer.meshes(image.bgr, faces)
    return {
        "ImageWidth": image.width,
        "ImageHeight": image.height,
        "DenseFaceShapeSet": [
            {**face_box(face), **dense_points(mesh.xy)} for face, mesh in zip(faces, meshes, strict=True)
        ],
        "FaceModelVersion": version,
    }
