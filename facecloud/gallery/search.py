"""Search: query vectors against the index of an account's groups, best candidate per person."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from sqlalchemy import select

from facecloud.errors import ApiError
from facecloud.gallery.index.base import Hit
from facecloud.gallery.index_sync import IndexSync
from facecloud.gallery.limits import MAX_FACES_PER_PERSON
from facecloud.gallery.lookups import group_not_found
from facecloud.gallery.models import FaceRow, GroupRow, MembershipRow, PersonRow
from facecloud.gallery.records import Candidate, PersonGroupInfo, SearchOutcome


class Search(IndexSync):
    def resolve_groups(self, account_id: int, group_ids: list[str]) -> tuple[dict[str, int], str]:
        """GroupId -> pk for groups of the account (all must exist and share one FaceModelVersion)."""
        with self.db.session() as session:
            rows = session.execute(
                select(GroupRow.group_id, GroupRow.id, GroupRow.face_model_version).where(
                    GroupRow.account_id == account_id, GroupRow.group_id.in_(group_ids)
                )
            ).all()
        found = {g: pk for g, pk, _ in rows}
        for group_id in group_ids:
            if group_id not in found:
                raise group_not_found(group_id)
        versions = {v for _, _, v in rows}
        if len(versions) > 1:
            raise ApiError(
                "FailedOperation.AcrossVersionsError",
                "The groups searched have different FaceModelVersions.",
                "所搜索的人员库算法模型版本不一致。",
            )
        return {g: found[g] for g in dict.fromkeys(group_ids)}, versions.pop() if versions else "3.0"

    def search(
        self, account_id: int, group_ids: list[str], kind: str, queries: np.ndarray, k: int, by_group: bool
    ) -> SearchOutcome:
        groups, version = self.resolve_groups(account_id, group_ids)
        self.sync()
        pks = list(groups.values())
        total = self.index.count(kind, pks)
        if total == 0:
            raise ApiError(
                "InvalidParameterValue.NoFaceInGroups",
                "The groups searched hold no faces.",
                "所搜索的人员库中没有人脸。",
            )
        fetch = k * MAX_FACES_PER_PERSON if kind == "face" else k
        raw = self.index.search(kind, account_id, pks, _unit_rows(queries), fetch)
        names = {pk: g for g, pk in groups.items()}
        owners = self._owners(kind, {h.item_pk for per in raw for hits in per.values() for h in hits})
        per_query = []
        for per_group in raw:
            if by_group:
                per_query.append({names[g]: _best_per_person(hits, owners, names, k) for g, hits in per_group.items()})
            else:
                merged = [h for hits in per_group.values() for h in hits]
                per_query.append({"": _best_per_person(merged, owners, names, k)})
        return SearchOutcome(per_query, total, version)

    def _owners(self, kind: str, item_pks: set[int]) -> dict[int, tuple[int, str, str]]:
        """item pk -> (person pk, PersonId, FaceId or "")."""
        if not item_pks:
            return {}
        with self.db.session() as session:
            if kind == "face":
                rows = session.execute(
                    select(FaceRow.id, PersonRow.id, PersonRow.person_id, FaceRow.face_id)
                    .join(PersonRow, PersonRow.id == FaceRow.person_pk)
                    .where(FaceRow.id.in_(item_pks))
                ).all()
                return {r[0]: (r[1], r[2], r[3]) for r in rows}
            rows = session.execute(select(PersonRow.id, PersonRow.person_id).where(PersonRow.id.in_(item_pks))).all()
            return {r[0]: (r[0], r[1], "") for r in rows}

    def person_details(self, person_pks: list[int]) -> dict[int, tuple[str, int, list[PersonGroupInfo]]]:
        """person pk -> (name, gender, groups with descriptions), for NeedPersonInfo."""
        if not person_pks:
            return {}
        with self.db.session() as session:
            persons = {p.id: p for p in session.scalars(select(PersonRow).where(PersonRow.id.in_(person_pks)))}
            groups: dict[int, list[PersonGroupInfo]] = defaultdict(list)
            for person_pk, group_id, values in session.execute(
                select(MembershipRow.person_pk, GroupRow.group_id, MembershipRow.ex_descriptions)
                .join(GroupRow, GroupRow.id == MembershipRow.group_pk)
                .where(MembershipRow.person_pk.in_(person_pks))
                .order_by(MembershipRow.created_at)
            ):
                groups[person_pk].append(PersonGroupInfo(group_id, list(values or [])))
            return {pk: (p.name, p.gender, groups[pk]) for pk, p in persons.items()}


def _best_per_person(
    hits: list[Hit], owners: dict[int, tuple[int, str, str]], names: dict[int, str], k: int
) -> list[Candidate]:
    best: dict[int, Candidate] = {}
    for hit in sorted(hits, key=lambda h: -h.similarity):
        owner = owners.get(hit.item_pk)
        if owner is None or owner[0] in best:
            continue  # deleted meanwhile, or a worse face of a person already listed
        best[owner[0]] = Candidate(owner[0], owner[1], owner[2], hit.similarity, names[hit.group_pk])
        if len(best) == k:
            break
    return list(best.values())


def _unit_rows(queries: np.ndarray) -> np.ndarray:
    rows = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
