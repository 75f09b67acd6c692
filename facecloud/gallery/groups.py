"""Groups: create, modify (names, tag, description fields), list, delete with the persons only they held."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from facecloud.errors import ApiError
from facecloud.gallery import validation as check
from facecloud.gallery.index_sync import IndexSync
from facecloud.gallery.limits import MAX_GROUPS_PER_ACCOUNT
from facecloud.gallery.lookups import find_group, millis
from facecloud.gallery.models import FaceRow, GroupRow, MembershipRow, PersonRow, utcnow
from facecloud.gallery.records import GroupInfo


class Groups(IndexSync):
    def create_group(
        self,
        account_id: int,
        group_id: str,
        name: str,
        ex_descriptions: list[str],
        tag: str,
        face_model_version: str,
    ) -> GroupInfo:
        (
            check.group_id(group_id),
            check.group_name(name),
            check.tag(tag),
            check.group_descriptions(ex_descriptions),
        )
        check.face_model_version(face_model_version)
        with self._write(account_id) as session:
            existing = session.execute(
                select(GroupRow.group_id, GroupRow.name).where(
                    GroupRow.account_id == account_id,
                    (GroupRow.group_id == group_id) | (GroupRow.name == name),
                )
            ).all()
            if any(g == group_id for g, _ in existing):
                raise ApiError(
                    "InvalidParameterValue.GroupIdAlreadyExist",
                    f"Group {group_id} already exists.",
                    f"人员库 {group_id} 已存在。",
                )
            if existing:
                raise ApiError(
                    "InvalidParameterValue.GroupNameAlreadyExist",
                    f"GroupName {name} is taken.",
                    f"人员库名称 {name} 已被使用。",
                )
            count = session.scalar(select(func.count()).select_from(GroupRow).where(GroupRow.account_id == account_id))
            if (count or 0) >= MAX_GROUPS_PER_ACCOUNT:
                raise ApiError(
                    "InvalidParameterValue.GroupNumExceed",
                    "The account has 100000 groups already.",
                    "账号的人员库数已达 100000 上限。",
                )
            now = utcnow()
            row = GroupRow(
                account_id=account_id,
                group_id=group_id,
                name=name,
                tag=tag,
                ex_descriptions=list(ex_descriptions),
                face_model_version=face_model_version,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            return group_info(row)

    def delete_group(self, account_id: int, group_id: str) -> None:
        """Deletes the group; persons in no other group are deleted with their faces."""
        with self._write(account_id) as session:
            group = find_group(session, account_id, group_id)
            members = list(session.scalars(select(MembershipRow.person_pk).where(MembershipRow.group_pk == group.id)))
            elsewhere = (
                set(
                    session.scalars(
                        select(MembershipRow.person_pk).where(
                            MembershipRow.person_pk.in_(members), MembershipRow.group_pk != group.id
                        )
                    )
                )
                if members
                else set()
            )
            orphans = [pk for pk in members if pk not in elsewhere]
            session.execute(delete(MembershipRow).where(MembershipRow.group_pk == group.id))
            for chunk in _chunks(orphans, 500):
                gone = session.scalar(select(func.count(FaceRow.id)).where(FaceRow.person_pk.in_(chunk)))
                self._count_faces(session, account_id, -int(gone or 0))
                session.execute(delete(FaceRow).where(FaceRow.person_pk.in_(chunk)))
                session.execute(delete(PersonRow).where(PersonRow.id.in_(chunk)))
            session.delete(group)
            self._log(session, account_id, "drop_group", group.id)
        self.sync()

    def modify_group(
        self,
        account_id: int,
        group_id: str,
        name: str | None,
        descriptions: list[tuple[int, str]],
        tag: str | None,
    ) -> None:
        with self._write(account_id) as session:
            group = find_group(session, account_id, group_id)
            if name is not None and name != group.name:
                check.group_name(name)
                taken = session.scalar(
                    select(GroupRow.id).where(GroupRow.account_id == account_id, GroupRow.name == name)
                )
                if taken is not None:
                    raise ApiError(
                        "InvalidParameterValue.GroupNameAlreadyExist",
                        f"GroupName {name} is taken.",
                        f"人员库名称 {name} 已被使用。",
                    )
                group.name = name
            if tag is not None:
                group.tag = check.tag(tag)
            if descriptions:
                group.ex_descriptions = self._modified_descriptions(session, group, descriptions)
            group.updated_at = utcnow()

    def _modified_descriptions(self, session: Session, group: GroupRow, updates: list[tuple[int, str]]) -> list[str]:
        names = check.updated_group_descriptions(list(group.ex_descriptions or []), updates)
        if len(names) > len(group.ex_descriptions or []):
            for membership in session.scalars(select(MembershipRow).where(MembershipRow.group_pk == group.id)):
                membership.ex_descriptions = (list(membership.ex_descriptions or []) + [""] * len(names))[: len(names)]
        return names

    def list_groups(self, account_id: int, offset: int, limit: int) -> tuple[list[GroupInfo], int]:
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(GroupRow).where(GroupRow.account_id == account_id))
            rows = session.scalars(
                select(GroupRow)
                .where(GroupRow.account_id == account_id)
                .order_by(GroupRow.id)
                .offset(offset)
                .limit(limit)
            ).all()
            return [group_info(r) for r in rows], int(total or 0)

    def get_group(self, account_id: int, group_id: str) -> GroupInfo:
        with self.db.session() as session:
            return group_info(find_group(session, account_id, group_id))


def group_info(row: GroupRow) -> GroupInfo:
    return GroupInfo(
        row.group_id,
        row.name,
        list(row.ex_descriptions or []),
        row.tag,
        row.face_model_version,
        millis(row.created_at),
        millis(row.updated_at),
    )


def _chunks(values: list[int], size: int) -> list[list[int]]:
    return [values[i : i + size] for i in range(0, len(values), size)]
