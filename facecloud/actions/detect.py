"""DetectFace and DetectFaceAttributes (price list: 人脸检测与分析, service "detect").

Emotion (face-api's expression network) and Mask (a classifier on the SFace embedding) have models since issue 14.
Attributes without a model behind them (glasses, hat, hair, beauty, eyelids, eye size, eyebrows, moustache, nose, face
shape, skin) are returned as JSON null, never guessed; so are attributes that were not asked for or belong to a face
beyond the 5 largest (docs/attributes.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from facecloud.actions.common import ImageRequest, face_rect, load_image, model_version, per_image_answer
from facecloud.errors import ApiError
from facecloud.gateway.registry import ActionContext, action
from facecloud.vision.analysis import ATTRIBUTE_FACES, FaceAnalysis
from facecloud.vision.attributes import FaceAttributes
from facecloud.vision.quality import FaceQuality

DETECT_FACE_VERSIONS = ("2.0", "3.0")
ATTRIBUTES_VERSIONS = ("3.0",)
MIN_FACE_SIZES = (20, 34)
MASK_PRESENT = 0.5
DETAIL_TYPES = (
    "Age",
    "Beauty",
    "Emotion",
    "Eye",
    "Eyebrow",
    "Gender",
    "Hair",
    "Hat",
    "Headpose",
    "Mask",
    "Mouth",
    "Moustache",
    "Nose",
    "Shape",
    "Skin",
    "Smile",
)
FACE_ATTRIBUTE_FIELDS = (
    "Gender",
    "Age",
    "Expression",
    "Glass",
    "Pitch",
    "Yaw",
    "Roll",
    "Beauty",
    "Hat",
    "Mask",
    "Hair",
    "EyeOpen",
)
QUALITY_FIELDS = ("Score", "Sharpness", "Brightness", "Completeness")
# FaceAttributesType spells it "Headpose"; the response field is "HeadPose".
DETAIL_FIELDS = tuple("HeadPose" if name == "Headpose" else name for name in DETAIL_TYPES)


class DetectFaceRequest(ImageRequest):
    MaxFaceNum: int = Field(1, ge=1, le=120)
    MinFaceSize: int = 34
    NeedFaceAttributes: int = 0
    NeedQualityDetection: int = 0
    FaceModelVersion: str | None = None

    @field_validator("MinFaceSize")
    @classmethod
    def _min_face_size(cls, value: int) -> int:
        if value not in MIN_FACE_SIZES:
            raise ValueError("MinFaceSize must be 34 or 20")
        return value


class DetectFaceAttributesRequest(ImageRequest):
    MaxFaceNum: int = Field(1, ge=1, le=120)
    FaceAttributesType: str | None = None
    FaceModelVersion: str | None = None


def no_face() -> ApiError:
    return ApiError("InvalidParameterValue.NoFaceInPhoto", "No face in the image.", "图片中没有人脸。")


def _clamp(value: float, low: int, high: int) -> int:
    return int(min(high, max(low, round(value))))


def face_attributes_info(attributes: FaceAttributes | None) -> dict[str, Any]:
    """DetectFace's FaceAttributesInfo; every field null when not computed, model-less fields always null."""
    info: dict[str, Any] = dict.fromkeys(FACE_ATTRIBUTE_FIELDS)
    if attributes is None:
        return info
    info.update(
        Gender=_clamp(100 * attributes.male_probability, 0, 100),
        Age=_clamp(attributes.age, 0, 100),
        Expression=attributes.expression.smile,
        Pitch=_clamp(attributes.pose.pitch, -30, 30),
        Yaw=_clamp(attributes.pose.yaw, -30, 30),
        Roll=_clamp(attributes.pose.roll, -180, 180),
        EyeOpen=attributes.expression.eyes_open,
    )
    return info


def face_quality_info(quality: FaceQuality | None) -> dict[str, Any]:
    if quality is None:
        return dict.fromkeys(QUALITY_FIELDS)
    return {
        "Score": quality.score,
        "Sharpness": quality.sharpness,
        "Brightness": quality.brightness,
        "Completeness": dict(quality.completeness),
    }


@action("DetectFace", DetectFaceRequest, service="detect")
def detect_face(req: DetectFaceRequest, ctx: ActionContext) -> dict[str, Any]:
    version = model_version(req.FaceModelVersion, DETECT_FACE_VERSIONS)
    vision = ctx.runtime.vision
    want_attributes, want_quality = req.NeedFaceAttributes == 1, req.NeedQualityDetection == 1
    # Boxes alone need only the detector's pixels: a 12-MP photo is decoded at half its size.
    detect_only = 0 if want_attributes or want_quality else req.MinFaceSize
    image = load_image(ctx, req.Image, req.Url, req.NeedRotateDetection, detect_only=detect_only)
    faces = vision.detect(image, max_faces=req.MaxFaceNum, min_face_size=req.MinFaceSize)
    if not faces:
        raise no_face()
    if want_attributes or want_quality:
        analyses = vision.analyzer.analyze(image.bgr, faces, attributes=want_attributes, quality=want_quality)
    else:
        analyses = [FaceAnalysis() for _ in faces]
    infos = [
        {
            **face_rect(face),
            "FaceAttributesInfo": face_attributes_info(analysis.attributes),
            "FaceQualityInfo": face_quality_info(analysis.quality),
        }
        for face, analysis in zip(faces, analyses, strict=True)
    ]
    if want_attributes:
        for face, info in zip(faces[:ATTRIBUTE_FACES], infos, strict=False):
            info["FaceAttributesInfo"]["Mask"] = vision.mask_probability(image, face) >= MASK_PRESENT
    return per_image_answer(image, "FaceInfos", infos, version)


def parse_attribute_types(text: str | None) -> set[str]:
    """FaceAttributesType: comma-separated, case-insensitive; "None" or empty asks for nothing."""
    canonical = {name.lower(): name for name in DETAIL_TYPES}
    wanted: set[str] = set()
    for raw in (text or "").split(","):
        name = raw.strip().lower()
        if name in ("", "none"):
            continue
        if name not in canonical:
            raise ApiError(
                "InvalidParameterValue",
                f"FaceAttributesType: unknown attribute '{raw.strip()}' (valid: {', '.join(DETAIL_TYPES)}).",
                f"FaceAttributesType 含不支持的属性：{raw.strip()}。",
            )
        wanted.add(canonical[name])
    return wanted


def _item(type_: int, probability: float) -> dict[str, Any]:
    return {"Type": type_, "Probability": round(float(probability), 4)}


def face_detail_attributes(attributes: FaceAttributes | None, wanted: set[str]) -> dict[str, Any]:
    """FaceDetailAttributesInfo: requested attributes that have a model; everything else null."""
    detail: dict[str, Any] = dict.fromkeys(DETAIL_FIELDS)
    if attributes is None:
        return detail
    expression = attributes.expression
    if "Age" in wanted:
        detail["Age"] = _clamp(attributes.age, 0, 65)
    if "Gender" in wanted:
        male = attributes.male_probability >= 0.5
        detail["Gender"] = _item(
            0 if male else 1, attributes.male_probability if male else 1 - attributes.male_probability
        )
    if "Smile" in wanted:
        detail["Smile"] = expression.smile
    if "Eye" in wanted:
        closed = expression.eye_closed_probability
        detail["Eye"] = {
            "Glass": None,
            "EyelidType": None,
            "EyeSize": None,
            "EyeOpen": _item(0, 1 - closed) if expression.eyes_open else _item(1, closed),
        }
    if "Mouth" in wanted:
        jaw = expression.mouth_open_probability
        detail["Mouth"] = {"MouthOpen": _item(1, jaw) if expression.mouth_open else _item(0, 1 - jaw)}
    if "Headpose" in wanted:
        detail["HeadPose"] = {
            "Pitch": _clamp(attributes.pose.pitch, -30, 30),
            "Yaw": _clamp(attributes.pose.yaw, -30, 30),
            "Roll": _clamp(attributes.pose.roll, -180, 180),
        }
    return detail


def add_emotion_and_mask(vision, image, faces: list, details: list[dict[str, Any]], wanted: set[str]) -> None:  # type: ignore[no-untyped-def]
    """Emotion (face-api's expression net) and Mask (facecloud.vision.mask) of the attribute faces, when asked."""
    if "Emotion" in wanted and faces:
        for detail, emotion in zip(details, vision.expression.emotions(image.bgr, faces), strict=False):
            detail["FaceDetailAttributesInfo"]["Emotion"] = _item(emotion.type, emotion.probability)
    if "Mask" in wanted:
        for detail, face in zip(details, faces, strict=False):
            p = vision.mask_probability(image, face)
            # Tencent's types: 0 no mask ... 4 worn over nose and mouth; 1-3 (worn below) have no model here.
            item = _item(4, p) if p >= MASK_PRESENT else _item(0, 1 - p)
            detail["FaceDetailAttributesInfo"]["Mask"] = item


@action("DetectFaceAttributes", DetectFaceAttributesRequest, service="detect")
def detect_face_attributes(req: DetectFaceAttributesRequest, ctx: ActionContext) -> dict[str, Any]:
    version = model_version(req.FaceModelVersion, ATTRIBUTES_VERSIONS)
    wanted = parse_attribute_types(req.FaceAttributesType)
    vision = ctx.runtime.vision
    image = load_image(ctx, req.Image, req.Url, req.NeedRotateDetection)
    faces = vision.detect(image, max_faces=req.MaxFaceNum, min_face_size=34)
    if not faces:
        raise no_face()
    if wanted:
        analyses = vision.analyzer.analyze(image.bgr, faces, attributes=True, attribute_faces=ATTRIBUTE_FACES)
    else:
        analyses = [FaceAnalysis() for _ in faces]
    details = [
        {
            "FaceRect": face_rect(face),
            "FaceDetailAttributesInfo": face_detail_attributes(a.attributes, wanted),
        }
        for face, a in zip(faces, analyses, strict=True)
    ]
    add_emotion_and_mask(vision, image, faces[:ATTRIBUTE_FACES], details, wanted)
    return per_image_answer(image, "FaceDetailInfos", details, version)
