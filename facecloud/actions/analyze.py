"""AnalyzeFace and AnalyzeDenseLandmarks (price list: 五官定位, service "landmarks"): Tencent's 90 facial points,
and the dense points per part, of each face.

Mode 0: every face up to a limit (10 for AnalyzeFace, 5 for AnalyzeDenseLandmarks, largest first); Mode 1: the
largest face. The points come from the 478-point mesh (facecloud.vision.landmarks90, facecloud.vision.dense_landmarks,
docs/landmarks.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from facecloud.actions.common import ImageRequest, face_rect, load_image, model_version, per_image_answer
from facecloud.actions.detect import DETECT_FACE_VERSIONS, no_face
from facecloud.gateway.registry import ActionContext, action
from facecloud.vision.dense_landmarks import dense_points
from facecloud.vision.detector import DetectedFace
from facecloud.vision.image import DecodedImage
from facecloud.vision.landmarks90 import face_shape
from facecloud.vision.mesh import FaceMesh

MAX_FACES = 10
DENSE_MAX_FACES = 5
DENSE_FACE_VERSIONS = ("3.0",)
MIN_FACE_SIZE = 34


class AnalyzeFaceRequest(ImageRequest):
    Mode: int = Field(0, ge=0, le=1)
    FaceModelVersion: str | None = None


class AnalyzeDenseLandmarksRequest(AnalyzeFaceRequest):
    pass


def meshes_of_faces(
    req: AnalyzeFaceRequest, ctx: ActionContext, max_faces: int
) -> tuple[DecodedImage, list[tuple[DetectedFace, FaceMesh]]]:
    vision = ctx.runtime.vision
    image = load_image(ctx, req.Image, req.Url, req.NeedRotateDetection)
    faces = vision.detect(image, max_faces=1 if req.Mode == 1 else max_faces, min_face_size=MIN_FACE_SIZE)
    if not faces:
        raise no_face()
    return image, list(zip(faces, vision.analyzer.meshes(image.bgr, faces), strict=True))


@action("AnalyzeFace", AnalyzeFaceRequest, service="landmarks")
def analyze_face(req: AnalyzeFaceRequest, ctx: ActionContext) -> dict[str, Any]:
    version = model_version(req.FaceModelVersion, DETECT_FACE_VERSIONS)
    image, analysed = meshes_of_faces(req, ctx, MAX_FACES)
    return per_image_answer(image, "FaceShapeSet", [face_shape(mesh.xy) for _, mesh in analysed], version)


@action("AnalyzeDenseLandmarks", AnalyzeDenseLandmarksRequest, service="landmarks")
def analyze_dense_landmarks(req: AnalyzeDenseLandmarksRequest, ctx: ActionContext) -> dict[str, Any]:
    version = model_version(req.FaceModelVersion, DENSE_FACE_VERSIONS)
    image, analysed = meshes_of_faces(req, ctx, DENSE_MAX_FACES)
    shapes = [{**face_rect(face), **dense_points(mesh.xy)} for face, mesh in analysed]
    return per_image_answer(image, "DenseFaceShapeSet", shapes, version)
