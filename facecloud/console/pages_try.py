"""Try it: run DetectFace, AnalyzeFace, CompareFace, SearchPersons or DetectLiveFace on uploaded photos and see the
answer drawn on them, next to the exact JSON response, the SDK code (Python, Node) and the tccli command.

The call goes through invoke(), hence the gateway's metering rule: it is checked against arrears and billed as the
same call made with the SDK would be. Drawings are SVG rendered here (no script needed), scaled with the image."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from PIL import Image
from starlette.datastructures import UploadFile
from starlette.responses import Response

from facecloud.console.invoke import invoke, new_request_id
from facecloud.console.pages_account import service_names
from facecloud.console.snippets import snippets
from facecloud.console.web import HERE, Ctx, Pages
from facecloud.errors import ApiError
from facecloud.gateway.envelope import failure, success
from facecloud.gateway.registry import registry
from facecloud.vision.image import decode_bytes

PAGES = Pages("account")

MAX_IMAGE_BYTES = 5 * 1024 * 1024
SHOWN_PX = 720  # the longer side of the picture drawn in the page
TOP_CANDIDATES = 5
NO_FACE = HERE / "static" / "no-face.svg"


@dataclass(frozen=True)
class TryAction:
    name: str
    images: int  # how many photos it takes
    summary: str


ACTIONS = (
    TryAction("DetectFace", 1, "Faces, with attributes and quality"),
    TryAction("AnalyzeFace", 1, "90 landmarks per face"),
    TryAction("CompareFace", 2, "Similarity of the faces of two photos"),
    TryAction("SearchPersons", 1, "The persons of a group most like the face"),
    TryAction("DetectLiveFace", 1, "Is it a live face or a photo of one"),
)
BY_NAME = {a.name: a for a in ACTIONS}


@dataclass
class Picture:
    """A photo as the page draws it: a downscaled JPEG, the full size as the SVG's coordinate system."""

    src: str
    width: int
    height: int
    boxes: list[dict[str, Any]] = field(default_factory=list)
    points: list[tuple[int, int]] = field(default_factory=list)
    caption: str = ""

    @property
    def stroke(self) -> float:
        return max(self.width, self.height) / 250

    @property
    def font(self) -> float:
        return max(self.width, self.height) / 22


@PAGES.get("/try")
def show(ctx: Ctx) -> Response:
    return _render(ctx, BY_NAME["DetectFace"], group_id="", result=None)


@PAGES.post("/try")
def run(ctx: Ctx) -> Response:
    chosen = BY_NAME.get(ctx.param("action"))
    if chosen is None:
        raise ApiError("InvalidParameterValue", "choose one of the actions", "请选择一个接口。")
    photos = [_upload(ctx, name) for name in ("image_a", "image_b")[: chosen.images]]
    if any(photo is None for photo in photos):
        needed = "two photos (Photo and Second photo)" if chosen.images == 2 else "a photo (Photo)"
        raise ApiError(
            "InvalidParameterValue.ImageEmpty", f"{chosen.name} needs {needed}.", f"{chosen.name} 需要上传图片。"
        )
    group_id = ctx.param("group_id")
    fields = _fields(chosen.name, [base64.b64encode(p).decode() for p in photos if p], group_id)
    request_id = new_request_id()
    try:
        answer = invoke(ctx.runtime, ctx.account, chosen.name, fields, language=ctx.locale, request_id=request_id)
        envelope = json.loads(success(answer, request_id).body)
    except ApiError as error:
        answer = None
        envelope = json.loads(failure(error, request_id, ctx.locale).body)
    pictures = [_picture(p) for p in photos if p]
    if answer is not None:
        _draw(ctx, chosen.name, answer, pictures)
    result = {
        "json": json.dumps(envelope, ensure_ascii=False, indent=2),
        "pictures": [p for p in pictures if p is not None],
        "candidates": _candidates(ctx, chosen.name, answer),
        "error": envelope["Response"].get("Error"),
        "snippets": snippets(chosen.name, _shown_fields(fields), _endpoint(ctx)),
    }
    return _render(ctx, chosen, group_id=group_id, result=result)


def _render(ctx: Ctx, chosen: TryAction, group_id: str, result: dict[str, Any] | None) -> Response:
    return ctx.render(
        "try.html",
        actions=ACTIONS,
        chosen=chosen,
        groups=_group_ids(ctx),
        group_id=group_id,
        result=result,
        billed=_billed_services(ctx),
        max_mb=MAX_IMAGE_BYTES // (1024 * 1024),
    )


def _upload(ctx: Ctx, name: str) -> bytes | None:
    upload = ctx.form.get(name) if ctx.form is not None else None
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = upload.file.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise ApiError("InvalidParameterValue.ImageSizeExceed", "the image must be at most 5 MB", "图片不能超过 5 MB。")
    return data or None


def _fields(name: str, images: list[str], group_id: str) -> dict[str, Any]:
    if name == "DetectFace":
        return {"Image": images[0], "MaxFaceNum": 10, "NeedFaceAttributes": 1, "NeedQualityDetection": 1}
    if name == "CompareFace":
        return {"ImageA": images[0], "ImageB": images[1]}
    if name == "SearchPersons":
        return {
            "GroupIds": [group_id] if group_id else [],
            "Image": images[0],
            "MaxPersonNum": TOP_CANDIDATES,
            "NeedPersonInfo": 1,
        }
    return {"Image": images[0]}


def _shown_fields(fields: dict[str, Any]) -> dict[str, Any]:
    # The snippets read the photo from a file: the base64 itself is not worth showing.
    return {k: (f"<{k}>" if k.startswith("Image") else v) for k, v in fields.items()}


def _endpoint(ctx: Ctx) -> dict[str, str]:
    url = ctx.request.url
    return {"host": url.netloc, "scheme": url.scheme}


def _picture(data: bytes) -> Picture | None:
    try:
        decoded = decode_bytes(data)
    except ApiError:
        return None  # the JSON says why
    image = Image.fromarray(decoded.bgr[:, :, ::-1])
    image.thumbnail((SHOWN_PX, SHOWN_PX))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    src = "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()
    return Picture(src, decoded.width, decoded.height)


def _draw(ctx: Ctx, name: str, answer: dict[str, Any], pictures: list[Picture | None]) -> None:
    first = pictures[0] if pictures else None
    if first is None:
        return
    if name == "DetectFace":
        for number, face in enumerate(answer.get("FaceInfos") or [], start=1):
            first.boxes.append({**_box(face), "label": f"#{number} {_attributes_label(ctx, face)}"})
    elif name == "AnalyzeFace":
        for shape in answer.get("FaceShapeSet") or []:
            first.points += [(p["X"], p["Y"]) for points in shape.values() for p in points]
        first.caption = ctx._(
            "{faces} face(s), {points} points", faces=len(answer.get("FaceShapeSet") or []), points=len(first.points)
        )
    elif name == "SearchPersons":
        for result in answer.get("Results") or []:
            best = (result.get("Candidates") or [{}])[0]
            label = f"{best.get('PersonName') or best.get('PersonId', '')} {best.get('Score', '')}".strip()
            first.boxes.append({**_box(result.get("FaceRect") or {}), "label": label or ctx._("no match")})
    elif name == "CompareFace":
        for picture in pictures:
            if picture is not None:
                picture.caption = ctx._("Similarity {score}", score=answer.get("Score"))
    elif name == "DetectLiveFace":
        live = ctx._("live") if answer.get("IsLiveness") else ctx._("not live")
        first.caption = ctx._("Liveness score {score}", score=answer.get("Score")) + f" · {live}"


def _box(rect: dict[str, Any]) -> dict[str, int]:
    return {k: int(rect.get(k) or 0) for k in ("X", "Y", "Width", "Height")}


def _attributes_label(ctx: Ctx, face: dict[str, Any]) -> str:
    info = face.get("FaceAttributesInfo") or {}
    parts = []
    if info.get("Age") is not None:
        parts.append(ctx._("age {age}", age=info["Age"]))
    if info.get("Gender") is not None:
        parts.append(ctx._("male") if info["Gender"] >= 50 else ctx._("female"))
    quality = (face.get("FaceQualityInfo") or {}).get("Score")
    if quality is not None:
        parts.append(ctx._("quality {score}", score=quality))
    return " · ".join(parts)


def _candidates(ctx: Ctx, name: str, answer: dict[str, Any] | None) -> list[dict[str, Any]]:
    """SearchPersons' best persons, each with the thumbnail of one of its enrolled faces."""
    if name != "SearchPersons" or not answer:
        return []
    out = []
    for result in answer.get("Results") or []:
        for candidate in result.get("Candidates") or []:
            out.append({**candidate, "face_href": _face_href(ctx, str(candidate.get("PersonId") or ""))})
    return out[:TOP_CANDIDATES]


def _face_href(ctx: Ctx, person_id: str) -> str | None:
    try:
        info = ctx.runtime.gallery.get_person(ctx.account.id, person_id)
    except ApiError:
        return None
    return f"/console/faces/{quote(info.face_ids[0], safe='')}" if info.face_ids else None


def _group_ids(ctx: Ctx) -> list[str]:
    listing = invoke(ctx.runtime, ctx.account, "GetGroupList", {"Offset": 0, "Limit": 1000})
    return [str(g["GroupId"]) for g in listing.get("GroupInfos") or []]


def _billed_services(ctx: Ctx) -> dict[str, str]:
    """Per action, the price list's service it is billed as (in the page's language)."""
    names = service_names(ctx)
    actions = registry()
    billed = {}
    for chosen in ACTIONS:
        service = actions[chosen.name].service
        billed[chosen.name] = (
            names.get(service, service)
            if isinstance(service, str)
            else ctx._("Face search (one face) or multi-face search, by MaxFaceNum")
        )
    return billed


@PAGES.get("/faces/{face_id}")
def face_thumbnail(ctx: Ctx) -> Response:
    """The JPEG the gallery keeps for one of this account's faces; a neutral silhouette where it keeps none
    (thumbnails turned off, or faces enrolled before they were kept)."""
    jpeg = ctx.runtime.gallery.face_thumbnail(ctx.account.id, ctx.request.path_params["face_id"])
    headers = {"Cache-Control": "private, max-age=3600"}
    if jpeg is None:
        return Response(NO_FACE.read_bytes(), media_type="image/svg+xml", headers={**headers, "X-Thumbnail": "none"})
    return Response(jpeg, media_type="image/jpeg", headers=headers)
