"""The gallery domain: groups, persons (many groups each, per-group descriptions), faces and their embeddings.

Every change is one database transaction that also appends to the change log (gallery_changes); the vector
index is derived from the database and catches up from that log after each commit and before each search, so a
crash at any point leaves rows and vectors consistent (a vector only exists for a committed row, and a committed
row is indexed on the next sync, in this or any other process).

Writes are serialised per account, not per installation: a write takes its account's lock first (a PostgreSQL
advisory lock; SQLite has one writer anyway), which is all that uniqueness and the account/group limits need.
The change-log rows are appended last, under a short installation-wide lock held to the commit, so change-log
order is still commit order (a replay never skips a row that commits later with a smaller seq)."""

from __future__ import annotations

import secrets
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facecloud.db import Database, WriteAbandoned, commit_gate
from facecloud.errors import ApiError
from facecloud.gallery import validation as check
from facecloud.gallery.fusion import from_bytes, fuse, to_bytes
from facecloud.gallery.index.base import Change, Hit, VectorIndex
from facecloud.gallery.models import (
    AccountCounterRow,
    ChangeRow,
    FaceCropRow,
    FaceRow,
    GroupRow,
    MembershipRow,
    PersonRow,
    StateRow,
    utcnow,
)
from facecloud.gallery.thumbnails import load_thumbnail, store_thumbnail

MAX_FACES_PER_PERSON = 5
MAX_FACES_PER_UPLOAD = 4
MAX_GROUPS_PER_PERSON = 100
MAX_GROUPS_PER_ACCOUNT = 100_000
MAX_FACES_PER_GROUP = 3_000_000
MAX_FACES_PER_ACCOUNT = 50_000_000
SYNC_BATCH = 20_000
# Change-log rows kept behind the newest (and behind what this process's index applied): an index further behind
# than that (a node down for long) rebuilds from the database instead of replaying.
LOG_KEEP = 100_000
# PostgreSQL advisory lock keys (namespace, key): one per account, and one for appending to the change log.
ACCOUNT_LOCK = 0x6741
LOG_LOCK = 0x6742


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _not_found_group(group_id: str) -> ApiError:
    return ApiError(
        "InvalidParameterValue.GroupIdNotExist", f"Group {group_id} does not exist.", f"人员库 {group_id} 不存在。"
    )


def _not_found_person(person_id: str) -> ApiError:
    return ApiError(
        "InvalidParameterValue.PersonIdNotExist", f"Person {person_id} does not exist.", f"人员 {person_id} 不存在。"
    )


@dataclass(frozen=True)
class FaceInput:
    embedding: np.ndarray
    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0
    thumbnail: bytes | None = None  # a small JPEG of the face (thumbnails.py), kept with the face row
    crops: tuple[bytes, bytes] | None = None  # (SFace 112x112, ResNet 150x150) aligned crops, PNG


@dataclass(frozen=True)
class GroupInfo:
    group_id: str
    name: str
    ex_descriptions: list[str]
    tag: str
    face_model_version: str
    created_ms: int
    updated_ms: int


@dataclass(frozen=True)
class PersonInfo:
    person_id: str
    name: str
    gender: int
    face_ids: list[str]
    created_ms: int
    ex_descriptions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PersonGroupInfo:
    group_id: str
    ex_descriptions: list[str]


@dataclass(frozen=True)
class Candidate:
    person_pk: int
    person_id: str
    face_id: str  # "" for person-level search
    similarity: float
    group_id: str


@dataclass(frozen=True)
class SearchOutcome:
    """Per query: by group id, candidates best first (one per person). `total` = entries in the groups
    searched."""

    per_query: list[dict[str, list[Candidate]]]
    total: int
    face_model_version: str


@dataclass(frozen=True)
class PersonVectors:
    person_pk: int
    faces: np.ndarray  # [n, 128]
    feature: np.ndarray  # fused
    face_model_version: str


class Gallery:
    def __init__(self, db: Database, settings, index: VectorIndex | None = None) -> None:  # type: ignore[no-untyped-def]
        self.db = db
        self.settings = settings
        self.index = index if index is not None else _index_from_settings(settings)
        self._sync_lock = threading.Lock()
        self._ready = False
        self._closed = False
        self.epoch = self._ensure_state()
        self.sync()  # load, catch up or rebuild the index before the first request

    # ================================================================== state, sync, rebuild
    def _ensure_state(self) -> str:
        for key, value in (("epoch", uuid.uuid4().hex), ("write_lock", "0"), ("compacted_seq", "0")):
            try:
                with self.db.session() as session:
                    if session.get(StateRow, key) is None:
                        session.add(StateRow(key=key, value=value))
            except IntegrityError:
                pass  # another process created it first
        with self.db.session() as session:
            return session.get(StateRow, "epoch").value  # type: ignore[union-attr]

    def _lock_writes(self, session: Session) -> None:
        session.execute(update(StateRow).where(StateRow.key == "write_lock").values(value=StateRow.value))

    @contextmanager
    def _write(self, account_id: int) -> Iterator[Session]:
        """One write transaction of the account: its lock first, its change-log rows last, then the commit gate."""
        with self.db.session() as session:
            self._lock_account(session, account_id)
            log: list[ChangeRow] = []
            session.info["gallery_log"] = log
            yield session
            if log:
                self._lock_log(session)
                session.add_all(log)
                session.flush()
            if not commit_gate.get()():
                raise WriteAbandoned

    def _lock_account(self, session: Session, account_id: int) -> None:
        if self.db.is_sqlite:
            self._lock_writes(session)  # starts the write transaction now (SQLite allows one writer)
        else:
            session.execute(select(func.pg_advisory_xact_lock(ACCOUNT_LOCK, account_id)))

    def _lock_log(self, session: Session) -> None:
        if not self.db.is_sqlite:
            session.execute(select(func.pg_advisory_xact_lock(LOG_LOCK, 0)))

    def _log(self, session: Session, account_id: int, op: str, group_pk: int, item_pk: int = 0) -> None:
        session.info["gallery_log"].append(ChangeRow(account_id=account_id, op=op, group_pk=group_pk, item_pk=item_pk))

    def _count_faces(self, session: Session, account_id: int, delta: int) -> None:
        counter = session.get(AccountCounterRow, account_id)
        if counter is None:
            session.add(AccountCounterRow(account_id=account_id, faces=max(delta, 0)))
        elif delta:
            counter.faces = counter.faces + delta

    def sync(self) -> None:
        """Brings the index up to the database: rebuild when it belongs to another epoch, else replay the log.

        A shared index (Milvus: one for all processes) is replayed under the database write lock, so two
        processes
        never interleave their replays (a put landing after a later delete)."""
        with self._sync_lock:
            if not self._ready:
                if not self.index.is_current(self.epoch) or self.index.applied_seq > self._max_seq():
                    self.rebuild()
                self._ready = True
            if not getattr(self.index, "shared", False):
                self._replay()
                return
            if self._max_seq() <= self.index.applied_seq:
                return
            with self.db.session() as session:
                self._lock_writes(session)
                self.index.refresh()  # type: ignore[attr-defined]
                self._replay()

    def _replay(self) -> None:
        while True:
            with self.db.session() as session:
                rows = (
                    session.execute(
                        select(ChangeRow)
                        .where(ChangeRow.seq > self.index.applied_seq)
                        .order_by(ChangeRow.seq)
                        .limit(SYNC_BATCH)
                    )
                    .scalars()
                    .all()
                )
                # Only a gap after the watermark can mean compaction deleted rows this index still needed (the
                # newest LOG_KEEP rows always stay); the marker is read after the rows, so a compaction that
                # committed meanwhile is seen.
                gap = bool(rows) and rows[0].seq > self.index.applied_seq + 1
                behind = gap and self._compacted_seq(session) > self.index.applied_seq
                changes = [] if behind or not rows else self._resolve(session, rows)
            if behind:
                self.rebuild()
                return
            if not rows:
                return
            self.index.apply(changes, rows[-1].seq)

    @staticmethod
    def _compacted_seq(session: Session) -> int:
        row = session.get(StateRow, "compacted_seq", populate_existing=True)
        return int(row.value) if row is not None else 0

    def maintain(self) -> dict[str, int]:
        """Index maintenance, off the request path (the server's background task calls it): trains or retrains
        this process's embedded index where a group outgrew it, and, once per installation (whichever process holds
        the lock), compacts the change log."""
        self.sync()
        trained = self.index.maintain() if hasattr(self.index, "maintain") else 0
        compacted = 0
        with self.db.exclusive("gallery-compaction") as held:
            if held:
                compacted = self.compact_log()
        return {"trained_groups": trained, "compacted_changes": compacted}

    def compact_log(self, keep: int = LOG_KEEP) -> int:
        """Deletes the change-log rows older than the newest `keep` that this process's index has applied; returns
        how many. Any index still needing them rebuilds from the database on its next sync."""
        up_to = min(self._max_seq() - max(keep, 1), self.index.applied_seq)  # the newest row always stays
        with self.db.session() as session:
            if up_to <= self._compacted_seq(session):
                return 0
            deleted = session.execute(delete(ChangeRow).where(ChangeRow.seq <= up_to)).rowcount
            session.execute(update(StateRow).where(StateRow.key == "compacted_seq").values(value=str(up_to)))
        return int(deleted or 0)

    def _max_seq(self) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.coalesce(func.max(ChangeRow.seq), 0))) or 0)

    def _resolve(self, session: Session, rows: Sequence[ChangeRow]) -> list[Change]:
        face_pks = {r.item_pk for r in rows if r.op == "put_face"}
        person_pks = {r.item_pk for r in rows if r.op == "put_person"}
        faces = (
            dict(session.execute(select(FaceRow.id, FaceRow.embedding).where(FaceRow.id.in_(face_pks))).all())
            if face_pks
            else {}
        )
        persons = (
            dict(session.execute(select(PersonRow.id, PersonRow.feature).where(PersonRow.id.in_(person_pks))).all())
            if person_pks
            else {}
        )
        changes = []
        for row in rows:
            if row.op == "drop_group":
                changes.append(Change(row.seq, row.account_id, "drop_group", "", row.group_pk, 0))
                continue
            action, kind = row.op.split("_", 1)
            vector = None
            if action == "put":
                blob = (faces if kind == "face" else persons).get(row.item_pk)
                vector = from_bytes(blob) if blob else None
            changes.append(Change(row.seq, row.account_id, action, kind, row.group_pk, row.item_pk, vector))
        return changes

    def rebuild(self, progress: Callable[[int, int | None], None] | None = None) -> int:
        """Rebuilds the index from the database (one consistent read); returns the number of face entries.
        progress(groups done, groups), when given, hears of each group loaded."""
        self.index.reset(self.epoch)
        loaded = 0
        with self.db.engine.connect() as conn:
            if not self.db.is_sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                seq = int(conn.scalar(select(func.coalesce(func.max(ChangeRow.seq), 0))) or 0)
                groups = conn.execute(select(GroupRow.id, GroupRow.account_id)).all()
                for done, (group_pk, account_id) in enumerate(groups, start=1):
                    faces = conn.execute(
                        select(FaceRow.id, FaceRow.embedding)
                        .join(MembershipRow, MembershipRow.person_pk == FaceRow.person_pk)
                        .where(MembershipRow.group_pk == group_pk)
                    ).all()
                    loaded += self._load(faces, "face", account_id, group_pk)
                    persons = conn.execute(
                        select(PersonRow.id, PersonRow.feature)
                        .join(MembershipRow, MembershipRow.person_pk == PersonRow.id)
                        .where(MembershipRow.group_pk == group_pk, PersonRow.feature.is_not(None))
                    ).all()
                    self._load(persons, "person", account_id, group_pk)
                    if progress is not None:
                        progress(done, len(groups))
        self.index.finish_rebuild(self.epoch, seq)
        self.index.save()
        return loaded

    def index_report(self) -> dict[str, object]:
        """Per group, face and person rows in the database against the index's entries, after the index caught up
        with the change log (as a restarted server does): what a load or crash test checks."""
        self.sync()
        with self.db.session() as s:
            groups = list(s.scalars(select(GroupRow.id)))
            faces = dict(
                s.execute(
                    select(MembershipRow.group_pk, func.count(FaceRow.id))
                    .join(FaceRow, FaceRow.person_pk == MembershipRow.person_pk)
                    .group_by(MembershipRow.group_pk)
                ).all()
            )
            persons = dict(
                s.execute(select(MembershipRow.group_pk, func.count()).group_by(MembershipRow.group_pk)).all()
            )
        mismatched = [
            g
            for g in groups
            if faces.get(g, 0) != self.index.count("face", [g]) or persons.get(g, 0) != self.index.count("person", [g])
        ]
        return {
            "groups": len(groups),
            "face_rows": sum(faces.values()),
            "index_faces": self.index.count("face", groups),
            "person_rows": sum(persons.values()),
            "index_persons": self.index.count("person", groups),
            "mismatched_groups": len(mismatched),
            "consistent": not mismatched,
        }

    def _load(self, rows: Sequence, kind: str, account_id: int, group_pk: int) -> int:  # type: ignore[type-arg]
        if not rows:
            return 0
        items = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        self.index.load_entries(kind, account_id, group_pk, items, vectors)
        return len(rows)

    def close(self) -> None:
        """Saves (embedded) or releases (Milvus) the index; safe to call twice."""
        if not self._closed:
            self._closed = True
            self.index.close()

    # ================================================================== lookups
    def _group(self, session: Session, account_id: int, group_id: str) -> GroupRow:
        row = session.scalar(select(GroupRow).where(GroupRow.account_id == account_id, GroupRow.group_id == group_id))
        if row is None:
            raise _not_found_group(group_id)
        return row

    def _person(self, session: Session, account_id: int, person_id: str) -> PersonRow:
        row = session.scalar(
            select(PersonRow).where(PersonRow.account_id == account_id, PersonRow.person_id == person_id)
        )
        if row is None:
            raise _not_found_person(person_id)
        return row

    def _group_pks_of(self, session: Session, person_pk: int) -> list[int]:
        return list(session.scalars(select(MembershipRow.group_pk).where(MembershipRow.person_pk == person_pk)))

    def _face_rows(self, session: Session, person_pk: int) -> list[FaceRow]:
        return list(session.scalars(select(FaceRow).where(FaceRow.person_pk == person_pk).order_by(FaceRow.id)))

    @staticmethod
    def _group_info(row: GroupRow) -> GroupInfo:
        return GroupInfo(
            row.group_id,
            row.name,
            list(row.ex_descriptions or []),
            row.tag,
            row.face_model_version,
            _millis(row.created_at),
            _millis(row.updated_at),
        )

    # ================================================================== groups
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
            return self._group_info(row)

    def delete_group(self, account_id: int, group_id: str) -> None:
        """Deletes the group; persons in no other group are deleted with their faces."""
        with self._write(account_id) as session:
            group = self._group(session, account_id, group_id)
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
            group = self._group(session, account_id, group_id)
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
        names = list(group.ex_descriptions or [])
        for index, value in updates:
            if index < 0 or index >= check.MAX_DESCRIPTIONS:
                raise ApiError(
                    "InvalidParameterValue.GroupExDescriptionsExceed",
                    "At most 5 GroupExDescriptions.",
                    "人员库自定义描述字段最多 5 个。",
                )
            if index < len(names):
                names[index] = value
            elif index == len(names):
                names.append(value)
            else:
                raise ApiError(
                    "InvalidParameterValue",
                    "GroupExDescriptionIndex skips a field: add fields in order.",
                    "GroupExDescriptionIndex 跳过了字段：请按顺序添加字段。",
                )
        if len(set(names)) != len(names):
            raise ApiError(
                "FailedOperation.DuplicatedGroupDescription",
                "GroupExDescriptions must differ.",
                "人员库自定义描述字段名称不能重复。",
            )
        check.group_descriptions(names)
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
            return [self._group_info(r) for r in rows], int(total or 0)

    def get_group(self, account_id: int, group_id: str) -> GroupInfo:
        with self.db.session() as session:
            return self._group_info(self._group(session, account_id, group_id))

    # ================================================================== persons
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
        """Creates the person in the group with its first face, in one transaction. Returns (person_id,
        face_id)."""
        check.person_id(person_id), check.person_name(name), check.gender(gender)
        with self._write(account_id) as session:
            group = self._group(session, account_id, group_id)
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
            self._check_group_capacity(group.id, 1)
            self._check_account_capacity(session, account_id, 1)
            embedding = _normalised(face.embedding)
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
            face_row = self._add_face_row(session, person.id, face, embedding)
            self._count_faces(session, account_id, 1)
            self._log(session, account_id, "put_face", group.id, face_row.id)
            self._log(session, account_id, "put_person", group.id, person.id)
            face_id = face_row.face_id
        self.sync()
        return person_id, face_id

    def _add_face_row(self, session: Session, person_pk: int, face: FaceInput, embedding: np.ndarray) -> FaceRow:
        row = FaceRow(
            face_id=str(secrets.randbits(62)),
            person_pk=person_pk,
            embedding=to_bytes(embedding),
            x=face.x,
            y=face.y,
            width=face.width,
            height=face.height,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        store_thumbnail(session, row.id, face.thumbnail)
        if face.crops is not None:
            session.add(FaceCropRow(face_pk=row.id, sface_png=face.crops[0], resnet_png=face.crops[1]))
        return row

    def _check_account_capacity(self, session: Session, account_id: int, adding: int) -> None:
        counter = session.get(AccountCounterRow, account_id)
        faces = counter.faces if counter is not None else 0
        if (faces or 0) + adding > MAX_FACES_PER_ACCOUNT:
            raise ApiError(
                "InvalidParameterValue.AccountFaceNumExceed",
                f"The account holds {MAX_FACES_PER_ACCOUNT} faces already.",
                f"账号的人脸数已达上限 {MAX_FACES_PER_ACCOUNT}。",
            )

    def _check_group_capacity(self, group_pk: int, adding: int) -> None:
        if self.index.count("face", [group_pk]) + adding > MAX_FACES_PER_GROUP:
            raise ApiError(
                "InvalidParameterValue.GroupFaceNumExceed",
                "The group holds 3000000 faces already.",
                "人员库中的人脸数已达 3000000 上限。",
            )

    def delete_person(self, account_id: int, person_id: str) -> None:
        with self._write(account_id) as session:
            person = self._person(session, account_id, person_id)
            self._forget_person(session, person)
        self.sync()

    def _forget_person(self, session: Session, person: PersonRow) -> None:
        face_pks = list(session.scalars(select(FaceRow.id).where(FaceRow.person_pk == person.id)))
        for group_pk in self._group_pks_of(session, person.id):
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
            group = self._group(session, account_id, group_id)
            person = self._person(session, account_id, person_id)
            membership = session.get(MembershipRow, (group.id, person.id))
            if membership is None:
                raise ApiError(
                    "FailedOperation.GroupPersonMapNotExist",
                    f"Person {person_id} is not in {group_id}.",
                    f"人员 {person_id} 不在人员库 {group_id} 中。",
                )
            if len(self._group_pks_of(session, person.id)) == 1:
                self._forget_person(session, person)
            else:
                face_pks = list(session.scalars(select(FaceRow.id).where(FaceRow.person_pk == person.id)))
                self._log_membership_removed(session, account_id, group.id, person.id, face_pks)
                session.delete(membership)
        self.sync()

    def modify_person_base(self, account_id: int, person_id: str, name: str | None, gender: int | None) -> None:
        with self._write(account_id) as session:
            person = self._person(session, account_id, person_id)
            if name is not None:
                person.name = check.person_name(name)
            if gender is not None:
                person.gender = check.gender(gender, allow_unset=False)

    def modify_person_group_info(
        self, account_id: int, group_id: str, person_id: str, descriptions: list[tuple[int, str]]
    ) -> None:
        with self._write(account_id) as session:
            group = self._group(session, account_id, group_id)
            person = self._person(session, account_id, person_id)
            membership = session.get(MembershipRow, (group.id, person.id))
            if membership is None:
                raise ApiError(
                    "FailedOperation.GroupPersonMapNotExist",
                    f"Person {person_id} is not in {group_id}.",
                    f"人员 {person_id} 不在人员库 {group_id} 中。",
                )
            membership.ex_descriptions = check.person_descriptions(
                list(membership.ex_descriptions or []), descriptions, len(group.ex_descriptions or [])
            )

    def copy_person(self, account_id: int, person_id: str, group_ids: list[str]) -> list[str]:
        """Adds the person to more groups; returns the groups joined (already-joined ones are left out)."""
        for group_id in group_ids:
            check.group_id(group_id)
        with self._write(account_id) as session:
            person = self._person(session, account_id, person_id)
            groups = [self._group(session, account_id, g) for g in dict.fromkeys(group_ids)]
            current = self._group_pks_of(session, person.id)
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
                self._check_group_capacity(group.id, len(face_pks))
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
            person = self._person(session, account_id, person_id)
            faces = [f.face_id for f in self._face_rows(session, person.id)]
            return PersonInfo(person.person_id, person.name, person.gender, faces, _millis(person.created_at))

    def person_groups(
        self, account_id: int, person_id: str, offset: int, limit: int
    ) -> tuple[list[PersonGroupInfo], int, str]:
        with self.db.session() as session:
            person = self._person(session, account_id, person_id)
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
            group = self._group(session, account_id, group_id)
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
                PersonInfo(p.person_id, p.name, p.gender, face_ids[p.id], _millis(p.created_at), list(d or []))
                for p, d in rows
            ]
            return infos, persons, faces, group.face_model_version

    def count_persons(self, account_id: int, group_id: str) -> tuple[int, int]:
        with self.db.session() as session:
            return self._group_counts(session, self._group(session, account_id, group_id).id)

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

    # ================================================================== faces
    def person_vectors(self, account_id: int, person_id: str) -> PersonVectors:
        with self.db.session() as session:
            person = self._person(session, account_id, person_id)
            faces = self._face_rows(session, person.id)
            version = (
                session.scalar(
                    select(GroupRow.face_model_version)
                    .join(MembershipRow, MembershipRow.group_pk == GroupRow.id)
                    .where(MembershipRow.person_pk == person.id)
                    .limit(1)
                )
                or "3.0"
            )
            vectors = np.stack([from_bytes(f.embedding) for f in faces]) if faces else np.zeros((0, 128), np.float32)
            feature = from_bytes(person.feature) if person.feature else fuse(vectors)
            return PersonVectors(person.id, vectors, feature, version)

    def add_faces(self, account_id: int, person_id: str, faces: list[FaceInput]) -> list[str]:
        """Adds faces to the person (all or none); returns their FaceIds in order."""
        with self._write(account_id) as session:
            person = self._person(session, account_id, person_id)
            existing = self._face_rows(session, person.id)
            if len(existing) + len(faces) > MAX_FACES_PER_PERSON:
                raise ApiError(
                    "InvalidParameterValue.PersonFaceNumExceed",
                    "A person has at most 5 faces.",
                    "一个人员最多有 5 张人脸。",
                )
            group_pks = self._group_pks_of(session, person.id)
            for group_pk in group_pks:
                self._check_group_capacity(group_pk, len(faces))
            self._check_account_capacity(session, account_id, len(faces))
            rows = [self._add_face_row(session, person.id, f, _normalised(f.embedding)) for f in faces]
            self._count_faces(session, account_id, len(rows))
            embeddings = [from_bytes(f.embedding) for f in existing] + [from_bytes(r.embedding) for r in rows]
            person.feature = to_bytes(fuse(np.stack(embeddings)))
            for group_pk in group_pks:
                for row in rows:
                    self._log(session, account_id, "put_face", group_pk, row.id)
                self._log(session, account_id, "put_person", group_pk, person.id)
            face_ids = [r.face_id for r in rows]
        self.sync()
        return face_ids

    def delete_faces(self, account_id: int, person_id: str, face_ids: list[str]) -> list[str]:
        """Deletes the named faces of the person (unknown ids are skipped); the last face cannot go."""
        with self._write(account_id) as session:
            person = self._person(session, account_id, person_id)
            existing = self._face_rows(session, person.id)
            doomed = [f for f in existing if f.face_id in set(face_ids)]
            if doomed and len(doomed) >= len(existing):
                raise ApiError(
                    "InvalidParameterValue.DeleteFaceNumExceed",
                    "A person keeps at least one face: delete the person instead.",
                    "人员至少保留一张人脸：如需全部删除请删除该人员。",
                )
            if not doomed:
                return []
            kept = [from_bytes(f.embedding) for f in existing if f not in doomed]
            person.feature = to_bytes(fuse(np.stack(kept)))
            for group_pk in self._group_pks_of(session, person.id):
                for face in doomed:
                    self._log(session, account_id, "del_face", group_pk, face.id)
                self._log(session, account_id, "put_person", group_pk, person.id)
            session.execute(delete(FaceRow).where(FaceRow.id.in_([f.id for f in doomed])))
            self._count_faces(session, account_id, -len(doomed))
            deleted = [f.face_id for f in doomed]
        self.sync()
        return deleted

    # ================================================================== search
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
                raise _not_found_group(group_id)
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

    def face_thumbnail(self, account_id: int, face_id: str) -> bytes | None:
        """The JPEG kept for one of the account's faces, or None."""
        with self.db.session() as session:
            return load_thumbnail(session, account_id, face_id)


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


def _normalised(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0:
        raise ApiError(
            "FailedOperation.ImageFacedetectFailed", "The face gave no usable feature.", "未能从人脸中提取可用特征。"
        )
    return vector / norm


def _unit_rows(queries: np.ndarray) -> np.ndarray:
    rows = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _chunks(values: list[int], size: int) -> list[list[int]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _index_from_settings(settings) -> VectorIndex:  # type: ignore[no-untyped-def]
    backend = getattr(settings, "vector_backend", "embedded")
    if backend == "milvus":
        from facecloud.gallery.index.milvus import MilvusIndex

        prefix = getattr(settings, "milvus_collection_prefix", "facecloud_")
        return MilvusIndex(settings.milvus_uri or str(settings.data_dir / "milvus.db"), prefix)
    if backend != "embedded":
        raise ValueError(f"unknown vector backend {backend!r} (embedded or milvus)")
    from facecloud.gallery.index.embedded import EmbeddedIndex

    return EmbeddedIndex(settings.data_dir / "gallery-index")
