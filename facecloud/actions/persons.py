"""Person management (个体信息管理): CreatePerson (billed, service person_mgmt) and the free person actions."""

from __future__ import annotations

from pydantic import BaseModel, Field

from facecloud.actions.common import face_rect
from facecloud.actions.gallery_faces import enrolment_face
from facecloud.actions.groups import PageRequest, gallery_update
from facecloud.errors import ApiError
from facecloud.gallery.calibration import search_score, unique_person_score
from facecloud.gateway.registry import ActionContext, TencentRequest, action


class PersonExDescriptionInfo(BaseModel):
    PersonExDescriptionIndex: int
    PersonExDescription: str


class CreatePersonRequest(TencentRequest):
    GroupId: str
    PersonName: str
    PersonId: str
    Gender: int = 0
    PersonExDescriptionInfos: list[PersonExDescriptionInfo] = Field(default_factory=list)
    Image: str | None = None
    Url: str | None = None
    UniquePersonControl: int = 0
    QualityControl: int = Field(0, ge=0, le=4)
    NeedRotateDetection: int = Field(0, ge=0, le=1)


class PersonIdRequest(TencentRequest):
    PersonId: str


class PersonGroupRequest(TencentRequest):
    PersonId: str
    GroupId: str


class ModifyPersonBaseInfoRequest(TencentRequest):
    PersonId: str
    PersonName: str | None = None
    Gender: int | None = None


class ModifyPersonGroupInfoRequest(TencentRequest):
    GroupId: str
    PersonId: str
    PersonExDescriptionInfos: list[PersonExDescriptionInfo]


class CopyPersonRequest(TencentRequest):
    PersonId: str
    GroupIds: list[str]


class GetPersonGroupInfoRequest(PageRequest):
    PersonId: str


class GetPersonListRequest(PageRequest):
    GroupId: str


class GroupIdRequest(TencentRequest):
    GroupId: str


def _descriptions(infos: list[PersonExDescriptionInfo]) -> list[tuple[int, str]]:
    return [(i.PersonExDescriptionIndex, i.PersonExDescription) for i in infos]


def _similar_person(ctx: ActionContext, group_id: str, embedding, level: int) -> str:  # type: ignore[no-untyped-def]
    """UniquePersonControl: the PersonId of a person of the group this face matches at the level's FAR, or ""."""
    gallery = ctx.runtime.gallery
    try:
        outcome = gallery.search(ctx.account_id, [group_id], "face", embedding[None], 1, by_group=False)
    except ApiError as error:
        if error.code == "InvalidParameterValue.NoFaceInGroups":
            return ""
        raise
    best = outcome.per_query[0][""]
    similarity = (
        ctx.runtime.vision.models.as_sface_cosine(best[0].similarity, outcome.face_model_version) if best else 0
    )
    if best and search_score(similarity) >= unique_person_score(level, outcome.total):
        return best[0].person_id
    return ""


@action("CreatePerson", CreatePersonRequest, service="person_mgmt", heavy=True)
def create_person(req: CreatePersonRequest, ctx: ActionContext) -> dict:
    if req.UniquePersonControl not in (0, 1, 2, 3, 4):
        raise ApiError(
            "InvalidParameterValue.UniquePersonControlIllegal",
            "UniquePersonControl is 0 to 4.",
            "UniquePersonControl 取值为 0 到 4。",
        )
    gallery = ctx.runtime.gallery
    version = gallery.get_group(ctx.account_id, req.GroupId).face_model_version  # GroupIdNotExist first
    face, detected = enrolment_face(ctx, req.Image, req.Url, req.NeedRotateDetection, req.QualityControl, version)
    if req.UniquePersonControl:
        similar = _similar_person(ctx, req.GroupId, face.embedding, req.UniquePersonControl)
        if similar:
            return {
                "FaceId": "",
                "FaceRect": face_rect(detected),
                "SimilarPersonId": similar,
                "FaceModelVersion": gallery.get_group(ctx.account_id, req.GroupId).face_model_version,
            }
    _, face_id = gallery.create_person(
        ctx.account_id,
        req.GroupId,
        req.PersonId,
        req.PersonName,
        req.Gender,
        _descriptions(req.PersonExDescriptionInfos),
        face,
    )
    version = gallery.get_group(ctx.account_id, req.GroupId).face_model_version
    return {
        "FaceId": face_id,
        "FaceRect": face_rect(detected),
        "SimilarPersonId": "",
        "FaceModelVersion": version,
    }


gallery_update("DeletePerson", PersonIdRequest, "delete_person", "PersonId")
gallery_update("DeletePersonFromGroup", PersonGroupRequest, "delete_person_from_group", "PersonId", "GroupId")
gallery_update(
    "ModifyPersonBaseInfo", ModifyPersonBaseInfoRequest, "modify_person_base", "PersonId", "PersonName", "Gender"
)


@action("ModifyPersonGroupInfo", ModifyPersonGroupInfoRequest)
def modify_person_group_info(req: ModifyPersonGroupInfoRequest, ctx: ActionContext) -> dict:
    ctx.runtime.gallery.modify_person_group_info(
        ctx.account_id, req.GroupId, req.PersonId, _descriptions(req.PersonExDescriptionInfos)
    )
    return {}


@action("CopyPerson", CopyPersonRequest)
def copy_person(req: CopyPersonRequest, ctx: ActionContext) -> dict:
    if len(req.GroupIds) > 100:
        raise ApiError("InvalidParameterValue.GroupIdsExceed", "At most 100 GroupIds.", "GroupIds 最多 100 个。")
    joined = ctx.runtime.gallery.copy_person(ctx.account_id, req.PersonId, req.GroupIds)
    return {"SucGroupNum": len(joined), "SucGroupIds": joined}


@action("GetPersonBaseInfo", PersonIdRequest)
def get_person_base_info(req: PersonIdRequest, ctx: ActionContext) -> dict:
    info = ctx.runtime.gallery.get_person(ctx.account_id, req.PersonId)
    return {"PersonName": info.name, "Gender": info.gender, "FaceIds": info.face_ids}


@action("GetPersonGroupInfo", GetPersonGroupInfoRequest)
def get_person_group_info(req: GetPersonGroupInfoRequest, ctx: ActionContext) -> dict:
    groups, total, version = ctx.runtime.gallery.person_groups(ctx.account_id, req.PersonId, *req.page(100))
    return {
        "PersonGroupInfos": [{"GroupId": g.group_id, "PersonExDescriptions": g.ex_descriptions} for g in groups],
        "GroupNum": total,
        "FaceModelVersion": version,
    }


@action("GetPersonList", GetPersonListRequest)
def get_person_list(req: GetPersonListRequest, ctx: ActionContext) -> dict:
    persons, person_num, face_num, version = ctx.runtime.gallery.list_persons(
        ctx.account_id, req.GroupId, *req.page(1000)
    )
    return {
        "PersonInfos": [
            {
                "PersonName": p.name,
                "PersonId": p.person_id,
                "Gender": p.gender,
                "PersonExDescriptions": p.ex_descriptions,
                "FaceIds": p.face_ids,
                "CreationTimestamp": p.created_ms,
            }
            for p in persons
        ],
        "PersonNum": person_num,
        "FaceNum": face_num,
        "FaceModelVersion": version,
    }


@action("GetPersonListNum", GroupIdRequest)
def get_person_list_num(req: GroupIdRequest, ctx: ActionContext) -> dict:
    persons, faces = ctx.runtime.gallery.count_persons(ctx.account_id, req.GroupId)
    return {"PersonNum": persons, "FaceNum": faces}
