"""Finding an account's group, person and faces inside a session, with Tencent's not-found errors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from facecloud.errors import ApiError
from facecloud.gallery.models import FaceRow, GroupRow, MembershipRow, PersonRow


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def group_not_found(group_id: str) -> ApiError:
    return ApiError(
        "InvalidParameterValue.GroupIdNotExist", f"Group {group_id} does not exist.", f"人员库 {group_id} 不存在。"
    )


def person_not_found(person_id: str) -> ApiError:
    return ApiError(
        "InvalidParameterValue.PersonIdNotExist", f"Person {person_id} does not exist.", f"人员 {person_id} 不存在。"
    )


def find_group(session: Session, account_id: int, group_id: str) -> GroupRow:
    row = session.scalar(select(GroupRow).where(GroupRow.account_id == account_id, GroupRow.group_id == group_id))
    if row is None:
        raise group_not_found(group_id)
    return row


def find_person(session: Session, account_id: int, person_id: str) -> PersonRow:
    row = session.scalar(select(PersonRow).where(PersonRow.account_id == account_id, PersonRow.person_id == person_id))
    if row is None:
        raise person_not_found(person_id)
    return row


def group_pks_of(session: Session, person_pk: int) -> list[int]:
    return list(session.scalars(select(MembershipRow.group_pk).where(MembershipRow.person_pk == person_pk)))


def face_rows(session: Session, person_pk: int) -> list[FaceRow]:
    return list(session.scalars(select(FaceRow).where(FaceRow.person_pk == person_pk).order_by(FaceRow.id)))
