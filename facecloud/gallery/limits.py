"""Tencent's gallery limits, and the capacity checks a write makes before it adds faces."""

from __future__ import annotations

from sqlalchemy.orm import Session

from facecloud.errors import ApiError
from facecloud.gallery.index.base import VectorIndex
from facecloud.gallery.models import AccountCounterRow

MAX_FACES_PER_PERSON = 5
MAX_FACES_PER_UPLOAD = 4
MAX_GROUPS_PER_PERSON = 100
MAX_GROUPS_PER_ACCOUNT = 100_000
MAX_FACES_PER_GROUP = 3_000_000
MAX_FACES_PER_ACCOUNT = 50_000_000


def check_account_capacity(session: Session, account_id: int, adding: int) -> None:
    counter = session.get(AccountCounterRow, account_id)
    faces = counter.faces if counter is not None else 0
    if (faces or 0) + adding > MAX_FACES_PER_ACCOUNT:
        raise ApiError(
            "InvalidParameterValue.AccountFaceNumExceed",
            f"The account holds {MAX_FACES_PER_ACCOUNT} faces already.",
            f"账号的人脸数已达上限 {MAX_FACES_PER_ACCOUNT}。",
        )


def check_group_capacity(index: VectorIndex, group_pk: int, adding: int) -> None:
    if index.count("face", [group_pk]) + adding > MAX_FACES_PER_GROUP:
        raise ApiError(
            "InvalidParameterValue.GroupFaceNumExceed",
            "The group holds 3000000 faces already.",
            "人员库中的人脸数已达 3000000 上限。",
        )
