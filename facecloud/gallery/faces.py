"""Faces of a person: their embeddings (and the person's fused feature), thumbnails and aligned crops."""

from __future__ import annotations

import secrets

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from facecloud.errors import ApiError
from facecloud.gallery.fusion import from_bytes, fuse, to_bytes
from facecloud.gallery.index_sync import IndexSync
from facecloud.gallery.limits import MAX_FACES_PER_PERSON, check_account_capacity, check_group_capacity
from facecloud.gallery.lookups import face_rows, find_person, group_pks_of
from facecloud.gallery.models import FaceCropRow, FaceRow, GroupRow, MembershipRow, utcnow
from facecloud.gallery.records import FaceInput, PersonVectors
from facecloud.gallery.thumbnails import load_thumbnail, store_thumbnail


class Faces(IndexSync):
    def person_vectors(self, account_id: int, person_id: str) -> PersonVectors:
        with self.db.session() as session:
            person = find_person(session, account_id, person_id)
            faces = face_rows(session, person.id)
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
            person = find_person(session, account_id, person_id)
            existing = face_rows(session, person.id)
            if len(existing) + len(faces) > MAX_FACES_PER_PERSON:
                raise ApiError(
                    "InvalidParameterValue.PersonFaceNumExceed",
                    "A person has at most 5 faces.",
                    "一个人员最多有 5 张人脸。",
                )
            group_pks = group_pks_of(session, person.id)
            for group_pk in group_pks:
                check_group_capacity(self.index, group_pk, len(faces))
            check_account_capacity(session, account_id, len(faces))
            rows = [add_face_row(session, person.id, f, normalised(f.embedding)) for f in faces]
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
            person = find_person(session, account_id, person_id)
            existing = face_rows(session, person.id)
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
            for group_pk in group_pks_of(session, person.id):
                for face in doomed:
                    self._log(session, account_id, "del_face", group_pk, face.id)
                self._log(session, account_id, "put_person", group_pk, person.id)
            session.execute(delete(FaceRow).where(FaceRow.id.in_([f.id for f in doomed])))
            self._count_faces(session, account_id, -len(doomed))
            deleted = [f.face_id for f in doomed]
        self.sync()
        return deleted

    def face_thumbnail(self, account_id: int, face_id: str) -> bytes | None:
        """The JPEG kept for one of the account's faces, or None."""
        with self.db.session() as session:
            return load_thumbnail(session, account_id, face_id)


def add_face_row(session: Session, person_pk: int, face: FaceInput, embedding: np.ndarray) -> FaceRow:
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


def normalised(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0:
        raise ApiError(
            "FailedOperation.ImageFacedetectFailed", "The face gave no usable feature.", "未能从人脸中提取可用特征。"
        )
    return vector / norm
