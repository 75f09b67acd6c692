"""Pages of an account's groups and persons: list, search by id or name, create, delete, face counts.

Everything goes through the Tencent actions (invoke.py); a search by name scans the listing page by page."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.responses import Response

from facecloud.console.invoke import invoke
from facecloud.console.web import Ctx, Pages
from facecloud.errors import ApiError

PAGES = Pages("account")

PAGE = 1000  # the largest Limit GetGroupList and GetPersonList accept
SCAN_PAGES = 20  # a name search looks at most at this many pages
SHOWN = 100
MAX_IMAGE_BYTES = 5 * 1024 * 1024


def _matches(query: str, *values: object) -> bool:
    needle = query.casefold()
    return not needle or any(needle in str(v or "").casefold() for v in values)


def _listing(ctx: Ctx, action: str, key: str, fields: dict[str, Any]) -> Iterator[dict[str, Any]]:
    account = ctx.account
    for page in range(SCAN_PAGES):
        batch = invoke(ctx.runtime, account, action, {**fields, "Offset": page * PAGE, "Limit": PAGE})
        items = batch.get(key) or []
        yield from items
        if len(items) < PAGE:
            return


def _when(timestamp_ms: object) -> datetime | None:
    return datetime.fromtimestamp(int(timestamp_ms) / 1000, UTC) if timestamp_ms else None  # type: ignore[call-overload]


@PAGES.get("/groups")
def groups(ctx: Ctx) -> Response:
    query = ctx.param("q")
    found = [
        g
        for g in _listing(ctx, "GetGroupList", "GroupInfos", {})
        if _matches(query, g.get("GroupId"), g.get("GroupName"))
    ]
    rows = []
    for group in found[:SHOWN]:
        counts = invoke(ctx.runtime, ctx.account, "GetPersonListNum", {"GroupId": group["GroupId"]})
        rows.append(
            {
                **group,
                "persons": counts.get("PersonNum", 0),
                "faces": counts.get("FaceNum", 0),
                "created": _when(group.get("CreationTimestamp")),
                "href": _group_href(group["GroupId"]),
            }
        )
    return ctx.render("groups.html", groups=rows, total=len(found), query=query, shown=SHOWN)


@PAGES.post("/groups")
def create_group(ctx: Ctx) -> Response:
    group_id = ctx.param("group_id")
    invoke(
        ctx.runtime,
        ctx.account,
        "CreateGroup",
        {
            "GroupId": group_id,
            "GroupName": ctx.param("group_name"),
            "Tag": ctx.param("tag") or None,
        },
    )
    return ctx.redirect("/console/groups", "ok", ctx._("Group {id} created.", id=group_id))


@PAGES.post("/groups/{group_id}/delete")
def delete_group(ctx: Ctx) -> Response:
    group_id = ctx.request.path_params["group_id"]
    invoke(ctx.runtime, ctx.account, "DeleteGroup", {"GroupId": group_id})
    if ctx.is_htmx:
        return Response("")  # the row is swapped for nothing
    return ctx.redirect("/console/groups", "ok", ctx._("Group {id} deleted.", id=group_id))


@PAGES.get("/groups/{group_id}")
def persons(ctx: Ctx) -> Response:
    group_id = ctx.request.path_params["group_id"]
    group = invoke(ctx.runtime, ctx.account, "GetGroupInfo", {"GroupId": group_id})
    query = ctx.param("q")
    found = [
        p
        for p in _listing(ctx, "GetPersonList", "PersonInfos", {"GroupId": group_id})
        if _matches(query, p.get("PersonId"), p.get("PersonName"))
    ]
    rows = [
        {
            **p,
            "faces": len(p.get("FaceIds") or []),
            "face_hrefs": [f"/console/faces/{quote(str(f), safe='')}" for f in p.get("FaceIds") or []],
            "created": _when(p.get("CreationTimestamp")),
        }
        for p in found[:SHOWN]
    ]
    counts = invoke(ctx.runtime, ctx.account, "GetPersonListNum", {"GroupId": group_id})
    return ctx.render(
        "persons.html",
        group=group,
        group_id=group_id,
        href=_group_href(group_id),
        persons=rows,
        total=len(found),
        query=query,
        shown=SHOWN,
        counts=counts,
    )


@PAGES.post("/groups/{group_id}/persons")
def create_person(ctx: Ctx) -> Response:
    group_id = ctx.request.path_params["group_id"]
    person_id = ctx.param("person_id")
    fields: dict[str, Any] = {
        "GroupId": group_id,
        "PersonId": person_id,
        "PersonName": ctx.param("person_name"),
        "Gender": int(ctx.param("gender") or 0),
    }
    upload = ctx.form.get("image") if ctx.form is not None else None
    if isinstance(upload, UploadFile) and upload.filename:
        data = upload.file.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise ApiError("InvalidParameterValue", "the image must be at most 5 MB", "图片不能超过 5 MB。")
        fields["Image"] = base64.b64encode(data).decode()
    elif ctx.param("url"):
        fields["Url"] = ctx.param("url")
    else:
        raise ApiError(
            "InvalidParameterValue",
            "a person needs a face image: upload one or give its URL",
            "创建人员需要人脸图片：请上传图片或提供其 URL。",
        )
    result = invoke(ctx.runtime, ctx.account, "CreatePerson", fields)
    return ctx.redirect(
        _group_href(group_id),
        "ok",
        ctx._("Person {id} created (face {face}).", id=person_id, face=result.get("FaceId")),
    )


@PAGES.post("/groups/{group_id}/persons/{person_id}/delete")
def delete_person(ctx: Ctx) -> Response:
    group_id, person_id = ctx.request.path_params["group_id"], ctx.request.path_params["person_id"]
    invoke(ctx.runtime, ctx.account, "DeletePerson", {"PersonId": person_id})
    if ctx.is_htmx:
        return Response("")
    return ctx.redirect(_group_href(group_id), "ok", ctx._("Person {id} deleted.", id=person_id))


def _group_href(group_id: str) -> str:
    return f"/console/groups/{quote(group_id, safe='')}"
