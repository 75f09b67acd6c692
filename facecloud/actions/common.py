"""Request fields and helpers shared by the image actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from facecloud.errors import ApiError
from facecloud.gateway.registry import ActionContext, TencentRequest

if TYPE_CHECKING:
    from facecloud.vision.detector import DetectedFace
    from facecloud.vision.image import DecodedImage

FACE_MODEL_VERSION = "3.0"


class ImageRequest(TencentRequest):
    """`Image` (base64) or `Url`; when both are given, Url wins (Tencent's rule)."""

    Image: str | None = None
    Url: str | None = None
    NeedRotateDetection: int = Field(0, ge=0, le=1)


def load_image(
    ctx: ActionContext,
    image: str | None,
    url: str | None,
    need_rotate: int = 0,
    fields: tuple[str, str] = ("Image", "Url"),
    detect_only: int = 0,
) -> DecodedImage:
    """The decoded image of a request's (Image, Url) pair; `fields` names the pair in the ImageEmpty message.
    detect_only: see Pipeline.decode."""
    require_image(image, url, fields)
    return ctx.runtime.vision.decode(image=image, url=url, need_rotate=bool(need_rotate), detect_only=detect_only)


def require_image(image: str | None, url: str | None, fields: tuple[str, str] = ("Image", "Url")) -> None:
    if not image and not url:
        raise ApiError(
            "InvalidParameterValue.ImageEmpty",
            f"The image is empty: give {fields[0]} or {fields[1]}.",
            f"图片为空：请提供 {fields[0]} 或 {fields[1]}。",
        )


def face_rect(face: DetectedFace) -> dict[str, int]:
    """Tencent's FaceRect (also DetectFace's X/Y/Width/Height) of a detected face."""
    return {"X": int(face.x), "Y": int(face.y), "Width": int(face.width), "Height": int(face.height)}


def per_image_answer(image: DecodedImage, field: str, faces: list[Any], version: str) -> dict[str, Any]:
    """The answer of the actions that describe each face of one image: its size, the faces, the model version."""
    return {"ImageWidth": image.width, "ImageHeight": image.height, field: faces, "FaceModelVersion": version}


def model_version(requested: str | None, allowed: tuple[str, ...]) -> str:
    """The FaceModelVersion asked for (3.0 when absent), or FaceModelVersionIllegal."""
    if requested in (None, ""):
        return FACE_MODEL_VERSION
    if requested not in allowed:
        raise ApiError(
            "InvalidParameterValue.FaceModelVersionIllegal",
            f"FaceModelVersion must be one of {', '.join(allowed)}.",
            f"算法模型版本不合法，支持：{'、'.join(allowed)}。",
        )
    return requested
