"""Search (人脸检索, service "search"; "multi_search" when MaxFaceNum > 1): SearchFaces, SearchPersons,
SearchFacesReturnsByGroup, SearchPersonsReturnsByGroup.

Faces of the query image: the MaxFaceNum largest of at least MinFaceSize px. Candidates are persons, best first, one per
person (SearchFaces: its best-matching face; SearchPersons: the fused person feature, facecloud.gallery.fusion). Scores:
Tencent's gallery scale (facecloud.gallery.calibration: 70/80/90 at 10k faces = FAR 1%/0.1%/0.01%). FaceMatchThreshold:
SearchFaces keeps Scores strictly above it; the other three keep Scores >= it."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from pydantic import Field

from facecloud.actions.common import ImageRequest, face_rect, load_image
from facecloud.actions.detect import no_face
from facecloud.errors import ApiError
from facecloud.gallery.calibration import search_score
from facecloud.gallery.records import Candidate, SearchOutcome
from facecloud.gateway.registry import ActionContext, action
from facecloud.vision.quality_control import check_quality

RET_OK, RET_QUALITY = 0, -1601


class SearchRequest(ImageRequest):
    GroupIds: list[str]
    MaxFaceNum: int = Field(1, ge=1, le=10)
    MinFaceSize: int = Field(34, ge=1)
    QualityControl: int = Field(0, ge=0, le=4)
    FaceMatchThreshold: float = 0.0
    NeedPersonInfo: int = 0


class SearchFacesRequest(SearchRequest):
    MaxPersonNum: int = Field(5, ge=1)


class SearchByGroupRequest(SearchRequest):
    MaxPersonNumPerGroup: int = Field(5, ge=1)


def search_service(req: SearchRequest) -> str:
    return "multi_search" if req.MaxFaceNum > 1 else "search"


def _validate(req: SearchRequest, max_groups: int, max_persons: int, persons: int) -> None:
    if not req.GroupIds:
        raise ApiError("MissingParameter", "GroupIds is required.", "缺少参数 GroupIds。")
    if len(req.GroupIds) > max_groups:
        raise ApiError(
            "InvalidParameterValue.GroupIdsExceed",
            f"At most {max_groups} GroupIds.",
            f"GroupIds 最多 {max_groups} 个。",
        )
    if persons > max_persons:
        raise ApiError(
            "InvalidParameterValue.SearchPersonsExceed",
            f"At most {max_persons} persons per face.",
            f"每张人脸最多返回 {max_persons} 个人员。",
        )
    if not 0 <= req.FaceMatchThreshold < 100:
        raise ApiError(
            "InvalidParameterValue.FaceMatchThresholdIllegal",
            "FaceMatchThreshold is in [0, 100).",
            "FaceMatchThreshold 取值范围为 [0, 100)。",
        )


def _query_faces(ctx: ActionContext, req: SearchRequest, version: str) -> list[tuple[dict, np.ndarray | None]]:
    """(FaceRect, embedding or None when the face fails QualityControl) for each face searched, largest first."""
    vision = ctx.runtime.vision
    img = load_image(ctx, req.Image, req.Url, req.NeedRotateDetection)
    faces = vision.detect(img, max_faces=req.MaxFaceNum, min_face_size=req.MinFaceSize)
    if not faces:
        raise no_face()
    found = []
    for face in faces:
        try:
            check_quality(vision, img, face, req.QualityControl)
        except ApiError as error:
            if error.code != "FailedOperation.FaceQualityNotQualified":
                raise
            found.append((face_rect(face), None))
            continue
        found.append((face_rect(face), np.asarray(vision.models.embed(img.bgr, face, version), dtype=np.float32)))
    return found


def _run(
    ctx: ActionContext, req: SearchRequest, kind: str, k: int, by_group: bool
) -> tuple[list[tuple[dict, int, dict[str, list[Candidate]]]], SearchOutcome | None]:
    """Per face: (FaceRect, RetCode, candidates by group). The outcome is None when no face passed quality."""
    gallery = ctx.runtime.gallery
    _, version = gallery.resolve_groups(ctx.account_id, req.GroupIds)  # group errors before image errors
    faces = _query_faces(ctx, req, version)
    usable = [vector for _, vector in faces if vector is not None]
    outcome = gallery.search(ctx.account_id, req.GroupIds, kind, np.stack(usable), k, by_group) if usable else None
    if outcome is not None and outcome.face_model_version != "2.0":
        outcome = _on_search_scale(ctx, outcome)
    results, next_row = [], 0
    for rect, vector in faces:
        if vector is None:
            results.append((rect, RET_QUALITY, {}))
            continue
        results.append((rect, RET_OK, outcome.per_query[next_row]))  # type: ignore[union-attr]
        next_row += 1
    return results, outcome


def _on_search_scale(ctx: ActionContext, outcome: SearchOutcome) -> SearchOutcome:
    """Similarities of another version carried onto SFace's, where the gallery's search table lives."""
    models = ctx.runtime.vision.models

    def carried(c: Candidate) -> Candidate:
        return replace(c, similarity=models.as_sface_cosine(c.similarity, outcome.face_model_version))

    per_query = [{g: [carried(c) for c in cs] for g, cs in q.items()} for q in outcome.per_query]
    return replace(outcome, per_query=per_query)


def _candidates(
    ctx: ActionContext,
    found: list[Candidate],
    threshold: float,
    keep: Callable[[float, float], bool],
    need_info: bool,
    with_face: bool,
) -> list[dict]:
    scored = [(c, search_score(c.similarity)) for c in found]
    scored = [(c, s) for c, s in scored if keep(s, threshold)]
    details = ctx.runtime.gallery.person_details([c.person_pk for c, _ in scored]) if need_info else {}
    out = []
    for candidate, score in scored:
        name, gender, groups = details.get(candidate.person_pk, (None, None, None))
        out.append(
            {
                "PersonId": candidate.person_id,
                "FaceId": candidate.face_id if with_face else None,
                "Score": score,
                "PersonName": name,
                "Gender": gender,
                "PersonGroupInfos": None
                if groups is None
                else [{"GroupId": g.group_id, "PersonExDescriptions": g.ex_descriptions} for g in groups],
            }
        )
    return out


def _flat(ctx: ActionContext, req: SearchFacesRequest, kind: str, keep: Callable[[float, float], bool]) -> dict:
    _validate(req, 100, 100, req.MaxPersonNum)
    results, outcome = _run(ctx, req, kind, req.MaxPersonNum, by_group=False)
    body = {
        "Results": [
            {
                "Candidates": _candidates(
                    ctx,
                    by_group.get("", []),
                    req.FaceMatchThreshold,
                    keep,
                    req.NeedPersonInfo == 1,
                    kind == "face",
                ),
                "FaceRect": rect,
                "RetCode": code,
            }
            for rect, code, by_group in results
        ]
    }
    body["FaceNum" if kind == "face" else "PersonNum"] = outcome.total if outcome else 0
    body["FaceModelVersion"] = outcome.face_model_version if outcome else "3.0"
    return body


def _grouped(ctx: ActionContext, req: SearchByGroupRequest, kind: str) -> dict:
    _validate(req, 60, 10, req.MaxPersonNumPerGroup)
    results, outcome = _run(ctx, req, kind, req.MaxPersonNumPerGroup, by_group=True)
    need_info = req.NeedPersonInfo == 1
    body = {
        "ResultsReturnsByGroup": [
            {
                "FaceRect": rect,
                "RetCode": code,
                "GroupCandidates": [
                    {
                        "GroupId": group_id,
                        "Candidates": _candidates(
                            ctx,
                            by_group.get(group_id, []),
                            req.FaceMatchThreshold,
                            operator.ge,
                            need_info,
                            kind == "face",
                        ),
                    }
                    for group_id in dict.fromkeys(req.GroupIds)
                ]
                if code == RET_OK
                else [],
            }
            for rect, code, by_group in results
        ]
    }
    body["FaceNum" if kind == "face" else "PersonNum"] = outcome.total if outcome else 0
    body["FaceModelVersion"] = outcome.face_model_version if outcome else "3.0"
    return body


@action("SearchFaces", SearchFacesRequest, service=search_service, heavy=True)
def search_faces(req: SearchFacesRequest, ctx: ActionContext) -> dict:
    return _flat(ctx, req, "face", operator.gt)


@action("SearchPersons", SearchFacesRequest, service=search_service, heavy=True)
def search_persons(req: SearchFacesRequest, ctx: ActionContext) -> dict:
    return _flat(ctx, req, "person", operator.ge)


@action("SearchFacesReturnsByGroup", SearchByGroupRequest, service=search_service, heavy=True)
def search_faces_returns_by_group(req: SearchByGroupRequest, ctx: ActionContext) -> dict:
    return _grouped(ctx, req, "face")


@action("SearchPersonsReturnsByGroup", SearchByGroupRequest, service=search_service, heavy=True)
def search_persons_returns_by_group(req: SearchByGroupRequest, ctx: ActionContext) -> dict:
    return _grouped(ctx, req, "person")
