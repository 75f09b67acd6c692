"""Persons: created with their first face, in many groups each with per-group descriptions, copied, removed."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from facecloud.errors import ApiError
from facecloud.gallery import validation as check
from facecloud.gallery.faces import add_face_row, normalised
from facecloud.gallery.fusion import fuse, to_bytes
from facecloud.gallery.index_sync import IndexSync
from facecloud.gallery.limits import MAX_GROUPS_PER_PERSON, check_account_capacity, check_group_capacity
from facecloud.gallery.lookups import face_rows, find_group, find_person, group_pks_of, millis
from facecloud.gallery.models import FaceRow, GroupRow, MembershipRow, PersonRow, utcnow
from facecloud.gallery.records import FaceInput, PersonGroupInfo, PersonInfo


class Persons(IndexSync):
    def create_person(
        self,
        account_id: int,
        group_id: str,
        person_id: str,
        name: str,
        gender: int,
        descriptions: list[tuple[int, str]],
        face: FaceInput,
    ) -> tuple[str, str]:
        """Creates the person in the group with its first face, in one transaction. Returns (person_id, face_id)."""
        check.person_id(person_id), check.person_name(name), check.gender(gender)
        with self._write(account_id) as session:
            group = find_group(session, account_id, group_id)
            values = check.person_descriptions([], descriptions, len(group.ex_descriptions or []))
            if (
                session.scalar(
                    select(PersonRow.id).where(PersonRow.account_id == account_id, PersonRow.person_id == person_id)
                )
                is not None
            ):
                raise ApiError(
                    "InvalidParameterValue.PersonIdAlreadyExist",
                    f"Person {person_id} already exists.",
                    f"人员 {person_id} 已存在。",
                )
            check_group_capacity(self.index, group.id, 1)
            check_account_capacity(session, account_id, 1)
            embedding = normalised(face.embedding)
            person = PersonRow(
                account_id=account_id,
                person_id=person_id,
                name=name,
                gender=gender,
                feature=to_bytes(fuse(embedding[None])),
                created_at=utcnow(),
            )
            session.add(person)
            session.flush()
            session.add(
                MembershipRow(group_pk=group.id, person_pk=person.id, ex_descriptions=values, created_at=utcnow())
            )
            face_row = add_face_row(session, person.id, face, embedding)
            self._count_faces(session, account_id, 1)
            self._log(session, account_id, "put_face", group.id, face_row.id)
            self._log(session, account_id, "put_person", group.id, person.id)
            face_id = face_row.face_id
        self.sync()
        return person_id, face_id

    def delete_person(self, account_id: int, person_id: str) -> None:
        with self._write(account_id) as session:
            person = find_person(session, account_id, person_id)
            self._forget_person(session, person)
        self.sync()

    def _forget_person(self, session: Session, person: PersonRow) -> None:
        face_pks = list(session.scalars(select(FaceRow.id).where(FaceRow.person_pk == person.id)))
        for group_pk in group_pks_of(session, person.id):
            self._log_membership_removed(session, person.account_id, group_pk, person.id, face_pks)
        session.execute(delete(MembershipRow).where(MembershipRow.person_pk == person.id))
        session.execute(delete(FaceRow).where(FaceRow.person_pk == person.id))
        self._count_faces(session, person.account_id, -len(face_pks))
        session.delete(person)

    def _log_membership_removed(
        self, session: Session, account_id: int, group_pk: int, person_pk: int, face_pks: list[int]
    ) -> None:
        for face_pk in face_pks:
            self._log(session, account_id, "del_face", group_pk, face_pk)
        self._log(session, account_id, "del_person", group_pk, person_pk)

    def delete_person_from_group(self, account_id: int, person_id: str, group_id: str) -> None:
        """Removes the person from one group; a person left in no group is deleted (Tencent's rule)."""
        with self._write(account_id) as session:
            group, person, membership = _membership(session, account_id, group_id, person_id)
            if len(group_pks_of(session, person.id)) == 1:
                self._forget_person(session, person)
            else:
                face_pks = list(session.scalars(select(FaceRow.id).where(FaceRow.person_pk == person.id)))
                self._log_membership_removed(session, account_id, group.id, person.id, face_pks)
                session.delete(membership)
        self.sync()

    def modify_person_base(self, account_id: int, person_id: str, name: str | None, gender: int | None) -> None:
        with self._write(account_id) as session:
            person = find_person(session, account_id, person_id)
            if name is not None:
                person.name = check.person_name(name)
            if gender is not None:
                person.gender = check.gender(gender, allow_unset=False)

    def modify_person_group_info(
        self, account_id: int, group_id: str, person_id: str, descriptions: list[tuple[int, str]]
    ) -> None:
        with self._write(account_id) as session:
            group, person, membership = _membership(session, account_id, group_id, person_id)
            membership.ex_descriptions = check.person_descriptions(
                list(membership.ex_descriptions or []), descriptions, len(group.ex_descriptions or [])
            )

    def copy_person(self, account_id: int, person_id: str, group_ids: list[str]) -> list[str]:
        """Adds the person to more groups; returns the groups joined (already-joined ones are left out)."""
        for group_id in group_ids:
            check.group_id(group_id)
        with self._write(account_id) as session:
            person = find_person(session, account_id, person_id)
            groups = [find_group(session, account_id, g) for g in dict.fromkeys(group_ids)]
            current = group_pks_of(session, person.id)
            versions = set(session.scalars(select(GroupRow.face_model_version).where(GroupRow.id.in_(current))))
            new = [g for g in groups if g.id not in current]
            if len(current) + len(new) > MAX_GROUPS_PER_PERSON:
                raise ApiError(
                    "InvalidParameterValue.GroupNumPerPersonExceed",
                    "A person is in at most 100 groups.",
                    "一个人员最多属于 100 个人员库。",
                )
            if versions | {g.face_model_version for g in new} != versions and versions:
                raise ApiError(
                    "FailedOperation.AcrossVersionsError",
                    "The groups have another FaceModelVersion than the person's groups.",
                    "这些人员库的算法模型版本与该人员所在人员库不同。",
                )
            face_pks = list(session.scalars(select(FaceRow.id).where(FaceRow.person_pk == person.id)))
            for group in new:
                check_group_capacity(self.index, group.id, len(face_pks))
                session.add(
                    MembershipRow(
                        group_pk=group.id,
                        person_pk=person.id,
                        ex_descriptions=[""] * len(group.ex_descriptions or []),
                        created_at=utcnow(),
                    )
                )
                for face_pk in face_pks:
                    self._log(session, account_id, "put_face", group.id, face_pk)
                self._log(session, account_id, "put_person", group.id, person.id)
            joined = [g.group_id for g in new]
        self.sync()
        return joined

    def get_person(self, account_id: int, person_id: str) -> PersonInfo:
        with self.db.session() as session:
            person = find_person(session, account_id, person_id)
            faces = [f.face_id for f in face_rows(session, person.id)]
            return PersonInfo(person.person_id, person.name, person.gender, faces, millis(person.created_at))

    def person_groups(
        self, account_id: int, person_id: str, offset: int, limit: int
    ) -> tuple[list[PersonGroupInfo], int, str]:
        with self.db.session() as session:
            person = find_person(session, account_id, person_id)
            rows = session.execute(
                select(GroupRow.group_id, MembershipRow.ex_descriptions, GroupRow.face_model_version)
                .join(MembershipRow, MembershipRow.group_pk == GroupRow.id)
                .where(MembershipRow.person_pk == person.id)
                .order_by(MembershipRow.created_at, GroupRow.id)
            ).all()
            version = rows[0][2] if rows else "3.0"
            page = [PersonGroupInfo(g, list(d or [])) for g, d, _ in rows[offset : offset + limit]]
            return page, len(rows), version

    def list_persons(
        self, account_id: int, group_id: str, offset: int, limit: int
    ) -> tuple[list[PersonInfo], int, int, str]:
        """(persons of the page, persons in the group, faces in the group, model version)."""
        with self.db.session() as session:
            group = find_group(session, account_id, group_id)
            persons, faces = self._group_counts(session, group.id)
            rows = session.execute(
                select(PersonRow, MembershipRow.ex_descriptions)
                .join(MembershipRow, MembershipRow.person_pk == PersonRow.id)
                .where(MembershipRow.group_pk == group.id)
                .order_by(MembershipRow.created_at, PersonRow.id)
                .offset(offset)
                .limit(limit)
            ).all()
            face_ids: dict[int, list[str]] = defaultdict(list)
            pks = [p.id for p, _ in rows]
            if pks:
                for person_pk, face_id in session.execute(
                    select(FaceRow.person_pk, FaceRow.face_id).where(FaceRow.person_pk.in_(pks)).order_by(FaceRow.id)
                ):
                    face_ids[person_pk].append(face_id)
            infos = [
                PersonInfo(p.person_id, p.name, p.gender, face_ids[p.id], millis(p.created_at), list(d or []))
                for p, d in rows
            ]
            return infos, persons, faces, group.face_model_version

    def count_persons(self, account_id: int, group_id: str) -> tuple[int, int]:
        with self.db.session() as session:
            return self._group_counts(session, find_group(session, account_id, group_id).id)

    def _group_counts(self, session: Session, group_pk: int) -> tuple[int, int]:
        persons = session.scalar(
            select(func.count()).select_from(MembershipRow).where(MembershipRow.group_pk == group_pk)
        )
        faces = session.scalar(
            select(func.count())
            .select_from(FaceRow)
            .join(MembershipRow, MembershipRow.person_pk == FaceRow.person_pk)
            .where(MembershipRow.group_pk == group_pk)
        )
        return int(persons or 0), int(faces or 0)


def _membership(
    session: Session, account_id: int, group_id: str, person_id: str
) -> tuple[GroupRow, PersonRow, MembershipRow]:
    """The group, the person and the person's membership of the group, or GroupPersonMapNotExist."""
    group = find_group(session, account_id, group_id)
    person = find_person(session, account_id, person_id)
    membership = session.get(MembershipRow, (group.id, person.id))
    if membership is None:
        raise ApiError(
            "FailedOperation.GroupPersonMapNotExist",
            f"Person {person_id} is not in {group_id}.",
            f"人员 {person_id} 不在人员库 {group_id} 中。",
        )
    return group, person, membership
