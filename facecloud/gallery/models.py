"""Tables of the gallery: groups, persons (in many groups, with per-group descriptions), faces with their embeddings,
and the change log the vector indexes follow.

Primary keys never come back after a delete (AUTOINCREMENT on SQLite), so an index key always names one row."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, MappedColumn, mapped_column

from facecloud.db import Base, UtcDateTime, account_ref, serial_key


def utcnow() -> datetime:
    return datetime.now(UTC)


def created_now() -> MappedColumn[datetime]:
    """When the row was written (UTC)."""
    return mapped_column(UtcDateTime, default=utcnow)


class _OwnedNamedRow:
    """A group or a person: its key, the account that owns it and Tencent's name of it (at most 60 characters)."""

    id: Mapped[int] = serial_key()
    account_id: Mapped[int] = account_ref(index=True)
    name: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = created_now()


class GroupRow(_OwnedNamedRow, Base):
    __tablename__ = "gallery_groups"
    __table_args__ = (
        UniqueConstraint("account_id", "group_id", name="uq_gallery_groups_account_group"),
        UniqueConstraint("account_id", "name", name="uq_gallery_groups_account_name"),
        {"sqlite_autoincrement": True},
    )

    group_id: Mapped[str] = mapped_column(String(64))
    tag: Mapped[str] = mapped_column(String(40), default="")
    ex_descriptions: Mapped[list[str]] = mapped_column(JSON, default=list)
    face_model_version: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class PersonRow(_OwnedNamedRow, Base):
    __tablename__ = "gallery_persons"
    __table_args__ = (
        UniqueConstraint("account_id", "person_id", name="uq_gallery_persons_account_person"),
        {"sqlite_autoincrement": True},
    )

    person_id: Mapped[str] = mapped_column(String(64))
    gender: Mapped[int] = mapped_column(Integer, default=0)
    # The person-level feature (see fusion.py), float32 bytes; recomputed whenever the person's faces change.
    feature: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class MembershipRow(Base):
    __tablename__ = "gallery_memberships"

    group_pk: Mapped[int] = mapped_column(ForeignKey("gallery_groups.id", ondelete="CASCADE"), primary_key=True)
    person_pk: Mapped[int] = mapped_column(
        ForeignKey("gallery_persons.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # One value per description field of the group (same order), "" where unset.
    ex_descriptions: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = created_now()


class FaceRow(Base):
    __tablename__ = "gallery_faces"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = serial_key()
    face_id: Mapped[str] = mapped_column(String(32), unique=True)
    person_pk: Mapped[int] = mapped_column(ForeignKey("gallery_persons.id", ondelete="CASCADE"), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, L2-normalised
    x: Mapped[int] = mapped_column(Integer, default=0)
    y: Mapped[int] = mapped_column(Integer, default=0)
    width: Mapped[int] = mapped_column(Integer, default=0)
    height: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = created_now()


class ChangeRow(Base):
    """What changed in the indexed content, in commit order: the indexes replay it to catch up.

    op: put_face / del_face (item = face pk), put_person / del_person (item = person pk), drop_group (item
    0)."""

    __tablename__ = "gallery_changes"
    __table_args__ = ({"sqlite_autoincrement": True},)

    seq: Mapped[int] = serial_key()
    account_id: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(16))
    group_pk: Mapped[int] = mapped_column(BigInteger)
    item_pk: Mapped[int] = mapped_column(BigInteger, default=0)


class StateRow(Base):
    """Key/value facts about the gallery as a whole (its epoch: a new database means every saved index is stale)."""

    __tablename__ = "gallery_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class AccountCounterRow(Base):
    """Faces an account holds, kept in the transaction that adds or deletes them (the AccountFaceNumExceed check)."""

    __tablename__ = "gallery_account_counters"

    account_id: Mapped[int] = account_ref(primary_key=True, autoincrement=False)
    faces: Mapped[int] = mapped_column(BigInteger, default=0)


class FaceCropRow(Base):
    """The aligned crops a face was embedded from (PNG), so another FaceModelVersion can re-embed it."""

    __tablename__ = "gallery_face_crops"

    face_pk: Mapped[int] = mapped_column(ForeignKey("gallery_faces.id", ondelete="CASCADE"), primary_key=True)
    sface_png: Mapped[bytes] = mapped_column(LargeBinary)
    resnet_png: Mapped[bytes] = mapped_column(LargeBinary)


class FaceVectorRow(Base):
    """A face's vector of a version its group is not (yet, or no longer) on: staged by an upgrade job, kept for
    a revert."""

    __tablename__ = "gallery_face_vectors"

    face_pk: Mapped[int] = mapped_column(ForeignKey("gallery_faces.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[str] = mapped_column(String(8), primary_key=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)


class VersionJobRow(Base):
    """UpgradeGroupFaceModelVersion's job. status: 0 running, 1 upgraded, 2 reverted, 3 failed (Tencent's)."""

    __tablename__ = "gallery_version_jobs"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = serial_key()
    job_id: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    group_pk: Mapped[int] = mapped_column(BigInteger, index=True)
    group_id: Mapped[str] = mapped_column(String(64))
    from_version: Mapped[str] = mapped_column(String(8))
    to_version: Mapped[str] = mapped_column(String(8))
    status: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    failed_face_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
