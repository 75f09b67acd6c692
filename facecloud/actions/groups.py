"""Group management (个体信息管理, free): CreateGroup, DeleteGroup, ModifyGroup, GetGroupList, GetGroupInfo."""

from __future__ import annotations

from pydantic import BaseModel, Field

from facecloud.errors import ApiError
from facecloud.gallery.records import GroupInfo
from facecloud.gateway.registry import ActionContext, TencentRequest, action


class CreateGroupRequest(TencentRequest):
    GroupName: str
    GroupId: str
    GroupExDescriptions: list[str] = Field(default_factory=list)
    Tag: str = ""
    FaceModelVersion: str = "3.0"


class GroupIdRequest(TencentRequest):
    GroupId: str


class GroupExDescriptionInfo(BaseModel):
    GroupExDescriptionIndex: int
    GroupExDescription: str


class ModifyGroupRequest(TencentRequest):
    GroupId: str
    GroupName: str | None = None
    GroupExDescriptionInfos: list[GroupExDescriptionInfo] = Field(default_factory=list)
    Tag: str | None = None


class PageRequest(TencentRequest):
    """Offset and Limit of a listing action (the gallery's and the version jobs')."""

    Offset: int = Field(0, ge=0)
    Limit: int = Field(10, ge=1)

    def page(self, maximum: int) -> tuple[int, int]:
        """(offset, limit); LimitExceed past the action's maximum."""
        return self.Offset, page_limit(self.Limit, maximum)


class GetGroupListRequest(PageRequest):
    pass


def group_json(info: GroupInfo) -> dict:
    return {
        "GroupName": info.name,
        "GroupId": info.group_id,
        "GroupExDescriptions": info.ex_descriptions,
        "Tag": info.tag,
        "FaceModelVersion": info.face_model_version,
        "CreationTimestamp": info.created_ms,
        "UpdateTimestamp": info.updated_ms,
    }


def page_limit(limit: int, maximum: int) -> int:
    if limit > maximum:
        raise ApiError("InvalidParameterValue.LimitExceed", f"Limit is at most {maximum}.", f"Limit 最大为 {maximum}。")
    return limit


def gallery_update(name: str, request: type[TencentRequest], method: str, *fields: str) -> None:
    """Registers an action that hands the account and the request's `fields` to one Gallery method and answers
    nothing beyond the RequestId."""

    def handler(req: TencentRequest, ctx: ActionContext) -> dict:
        getattr(ctx.runtime.gallery, method)(ctx.account_id, *(getattr(req, field) for field in fields))
        return {}

    handler.__name__ = method
    action(name, request)(handler)


@action("CreateGroup", CreateGroupRequest)
def create_group(req: CreateGroupRequest, ctx: ActionContext) -> dict:
    info = ctx.runtime.gallery.create_group(
        ctx.account_id,
        req.GroupId,
        req.GroupName,
        req.GroupExDescriptions,
        req.Tag,
        req.FaceModelVersion or "3.0",
    )
    return {"FaceModelVersion": info.face_model_version}


gallery_update("DeleteGroup", GroupIdRequest, "delete_group", "GroupId")


@action("ModifyGroup", ModifyGroupRequest)
def modify_group(req: ModifyGroupRequest, ctx: ActionContext) -> dict:
    updates = [(i.GroupExDescriptionIndex, i.GroupExDescription) for i in req.GroupExDescriptionInfos]
    ctx.runtime.gallery.modify_group(ctx.account_id, req.GroupId, req.GroupName, updates, req.Tag)
    return {}


@action("GetGroupList", GetGroupListRequest)
def get_group_list(req: GetGroupListRequest, ctx: ActionContext) -> dict:
    infos, total = ctx.runtime.gallery.list_groups(ctx.account_id, *req.page(1000))
    return {"GroupInfos": [group_json(i) for i in infos], "GroupNum": total}


@action("GetGroupInfo", GroupIdRequest)
def get_group_info(req: GroupIdRequest, ctx: ActionContext) -> dict:
    info = ctx.runtime.gallery.get_group(ctx.account_id, req.GroupId)
    body = group_json(info)
    body.pop("UpdateTimestamp")
    return body
