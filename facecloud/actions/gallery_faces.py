"""What the enrolment actions share: a face of an image as the gallery wants it."""

from __future__ import annotations

import numpy as np

from facecloud.actions.common import load_image
from facecloud.gallery.records import FaceInput
from facecloud.gallery.thumbnails import face_thumbnail
from facecloud.gateway.registry import ActionContext
from facecloud.vision.detector import DetectedFace
from facecloud.vision.image import DecodedImage
from facecloud.vision.quality_control import check_quality

MIN_FACE_SIZE = 34


def enrolment_face(
    ctx: ActionContext, image: str | None, url: str | None, need_rotate: int, quality_control: int, version: str
) -> tuple[FaceInput, DetectedFace]:
    """The largest face of the image, quality-checked and embedded with the version (raises the image errors)."""
    img = load_image(ctx, image, url, need_rotate)
    face = ctx.runtime.vision.largest_face(img, MIN_FACE_SIZE)
    check_quality(ctx.runtime.vision, img, face, quality_control)
    return as_input(ctx, img, face, version), face


def as_input(ctx: ActionContext, img: DecodedImage, face: DetectedFace, version: str) -> FaceInput:
    """The face's vector of the version, with the aligned crops another version can re-embed it from and the
    console's thumbnail."""
    models = ctx.runtime.vision.models
    crops = models.crops(img.bgr, face)
    embedding = np.asarray(models.embed_crops(crops, version), dtype=np.float32)
    x, y, width, height = int(face.x), int(face.y), int(face.width), int(face.height)
    thumbnail = face_thumbnail(img.bgr, x, y, width, height, ctx.runtime.settings.face_thumbnail_px)
    return FaceInput(embedding, x, y, width, height, thumbnail=thumbnail, crops=crops.to_png())
