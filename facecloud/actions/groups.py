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


class GetGroupListRequest(TencentRequest):
    Offset: int = Field(0, ge=0)
    Limit: int = Field(10, ge=1)


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


@action("DeleteGroup", GroupIdRequest)
def delete_group(req: GroupIdRequest, ctx: ActionContext) -> dict:
    ctx.runtime.gallery.delete_group(ctx.account_id, req.GroupId)
    return {}


@action("ModifyGroup", ModifyGroupRequest)
def modify_group(req: ModifyGroupRequest, ctx: ActionContext) -> dict:
    updates = [(i.GroupExDescriptionIndex, i.GroupExDescription) for i in req.GroupExDescriptionInfos]
    ctx.runtime.gallery.modify_group(ctx.account_id, req.GroupId, req.GroupName, updates, req.Tag)
    return {}


@action("GetGroupList", GetGroupListRequest)
def get_group_list(req: GetGroupListRequest, ctx: ActionContext) -> dict:
    infos, total = ctx.runtime.gallery.list_groups(ctx.account_id, req.Offset, page_limit(req.Limit, 1000))
    return {"GroupInfos": [group_json(i) for i in infos], "GroupNum": total}


@action("GetGroupInfo", GroupIdRequest)
def get_group_info(req: GroupIdRequest, ctx: ActionContext) -> dict:
    info = ctx.runtime.gallery.get_group(ctx.account_id, req.GroupId)
    body = group_json(info)
    body.pop("UpdateTimestamp")
    return body
