"""Face model version jobs: UpgradeGroupFaceModelVersion re-embeds a group's faces with another version in the
background; RevertGroupFaceModelVersion puts the previous vectors back.

How a job runs (one worker thread per process, `VersionJobs.start_worker`):
  1. batches of faces of the group that have no staged vector of the target version yet are re-embedded from
     their stored aligned crops (gallery_face_crops) and the vectors staged in gallery_face_vectors, one
     transaction per batch. The group's own vectors and index are untouched, so searches keep answering on
     the old version meanwhile. A face without crops (enrolled before crops were kept) is a failed face.
  2. when every face has a staged vector, one transaction swaps: each face's current vector is kept under the
     old version, the staged one becomes its vector, person features are fused again, the group takes the new
     version and the change log tells the index to replace the entries.
Progress is what is staged, so a process killed half-way resumes where it stopped: the next worker (the same
server restarted, or any other process of the installation) picks up running jobs. A group whose persons
also belong to other groups cannot be upgraded alone (its persons' vectors are shared): GroupCannotUpgrade.

The domain knows nothing of models: it is given `embed_crops(crops, version) -> vectors`."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from facecloud.errors import ApiError
from facecloud.gallery.fusion import from_bytes, fuse, to_bytes
from facecloud.gallery.lookups import find_group
from facecloud.gallery.models import (
    FaceCropRow,
    FaceRow,
    FaceVectorRow,
    GroupRow,
    MembershipRow,
    PersonRow,
    VersionJobRow,
    utcnow,
)

log = logging.getLogger(__name__)

RUNNING, UPGRADED, REVERTED, FAILED = 0, 1, 2, 3
BATCH = 64
IDLE_WAIT_S = 2.0

EmbedCrops = Callable[[list[tuple[bytes, bytes]], str], list[np.ndarray]]


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    group_id: str
    from_version: str
    to_version: str
    status: int
    progress: float  # 0..100
    start_ms: int
    end_ms: int  # finished, or the estimate while running
    failed_face_ids: list[str]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _no_job(job_id: str) -> ApiError:
    return ApiError(
        "FailedOperation.UpgradeJobIdNotExist", f"Upgrade job {job_id} does not exist.", "人员库升级任务不存在。"
    )


def _cannot_upgrade(why: str, why_zh: str) -> ApiError:
    return ApiError("FailedOperation.GroupCannotUpgrade", why, f"指定人员库的升级操作无法执行：{why_zh}")


class VersionJobs:
    def __init__(  # type: ignore[no-untyped-def]
        self, gallery, embed_crops: EmbedCrops, versions: tuple[str, ...], batch: int = BATCH, pause_s: float = 0.0
    ) -> None:
        """pause_s: a rest between batches, to leave the CPU to requests while a large group is re-embedded."""
        self.gallery = gallery
        self.db = gallery.db
        self.embed_crops = embed_crops
        self.versions = versions
        self.batch = batch
        self.pause_s = pause_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the actions
    def start(self, account_id: int, group_id: str, to_version: str) -> str:
        with self.gallery._write(account_id) as session:
            group = find_group(session, account_id, group_id)
            self._check_upgradable(session, group, to_version)
            total = self._face_count(session, group.id)
            job = VersionJobRow(
                job_id=secrets.token_hex(16),
                account_id=account_id,
                group_pk=group.id,
                group_id=group.group_id,
                from_version=group.face_model_version,
                to_version=to_version,
                status=RUNNING,
                total=total,
                done=0,
                failed_face_ids=[],
                started_at=utcnow(),
            )
            session.add(job)
            job_id = job.job_id
        self._wake.set()
        return job_id

    def _check_upgradable(self, session: Session, group: GroupRow, to_version: str) -> None:
        if to_version not in self.versions:
            raise ApiError(
                "InvalidParameterValue.FaceModelVersionIllegal",
                f"FaceModelVersion must be one of {', '.join(self.versions)}.",
                f"算法模型版本不合法，支持：{'、'.join(self.versions)}。",
            )
        if float(to_version) <= float(group.face_model_version):
            raise _cannot_upgrade(
                f"The group is on {group.face_model_version} already; a group is only upgraded to a newer version.",
                "人员库已是该版本或更高版本，不可逆向升级。",
            )
        running = session.scalar(
            select(VersionJobRow.id).where(VersionJobRow.group_pk == group.id, VersionJobRow.status == RUNNING)
        )
        if running is not None:
            raise _cannot_upgrade("The group has an upgrade job running.", "人员库正在升级中。")
        if self._shares_persons(session, group.id):
            raise _cannot_upgrade(
                "Persons of the group also belong to other groups: upgrade works on a group of its own persons.",
                "人员库中有人员同时属于其他人员库。",
            )

    @staticmethod
    def _shares_persons(session: Session, group_pk: int) -> bool:
        members = select(MembershipRow.person_pk).where(MembershipRow.group_pk == group_pk)
        shared = session.scalar(
            select(MembershipRow.person_pk)
            .where(MembershipRow.person_pk.in_(members), MembershipRow.group_pk != group_pk)
            .limit(1)
        )
        return shared is not None

    def jobs(self, account_id: int, offset: int, limit: int) -> tuple[list[JobInfo], int]:
        with self.db.session() as session:
            where = VersionJobRow.account_id == account_id
            total = int(session.scalar(select(func.count()).select_from(VersionJobRow).where(where)) or 0)
            rows = session.scalars(
                select(VersionJobRow).where(where).order_by(VersionJobRow.id.desc()).offset(offset).limit(limit)
            ).all()
            return [self._info(r) for r in rows], total

    def result(self, account_id: int, job_id: str) -> JobInfo:
        with self.db.session() as session:
            return self._info(self._job(session, account_id, job_id))

    def _job(self, session: Session, account_id: int, job_id: str) -> VersionJobRow:
        row = session.scalar(
            select(VersionJobRow).where(VersionJobRow.account_id == account_id, VersionJobRow.job_id == job_id)
        )
        if row is None:
            raise _no_job(job_id)
        return row

    @staticmethod
    def _info(row: VersionJobRow) -> JobInfo:
        start = _ms(row.started_at)
        progress = 100.0 if row.status != RUNNING else (100.0 * row.done / row.total if row.total else 0.0)
        if row.finished_at is not None:
            end = _ms(row.finished_at)
        elif row.done:
            end = start + int((_ms(utcnow()) - start) * row.total / row.done)
        else:
            end = 0
        return JobInfo(
            row.job_id,
            row.group_id,
            row.from_version,
            row.to_version,
            row.status,
            round(progress, 2),
            start,
            end,
            list(row.failed_face_ids or []),
        )

    def revert(self, account_id: int, job_id: str) -> None:
        """Back to the vectors before the upgrade (once per job, after it finished)."""
        with self.gallery._write(account_id) as session:
            job = self._job(session, account_id, job_id)
            group = session.get(GroupRow, job.group_pk)
            if job.status != UPGRADED or group is None or group.face_model_version != job.to_version:
                raise ApiError(
                    "FailedOperation.JobCannnotRollback",
                    "Only a finished upgrade of a group still on its version can be reverted, once.",
                    "任务无法回滚。",
                )
            self._swap(session, group, job.to_version, job.from_version)
            job.status = REVERTED
        self.gallery.sync()

    # ------------------------------------------------------------------ the worker
    def start_worker(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="facecloud-version-jobs", daemon=True)
            self._thread.start()

    def stop_worker(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                with self.db.exclusive("gallery-version-jobs") as held:  # one worker of the installation runs them
                    busy = self.run_once() if held else False
            except Exception:  # a bad batch must not end the worker; the job is retried
                log.exception("version job step failed")
                busy = False
            if not busy:
                self._wake.wait(IDLE_WAIT_S)
                self._wake.clear()
            elif self.pause_s:
                self._stop.wait(self.pause_s)

    def run_once(self) -> bool:
        """One step of the oldest running job (a batch, or the final swap); False when there is nothing to do."""
        with self.db.session() as session:
            job = session.scalar(
                select(VersionJobRow).where(VersionJobRow.status == RUNNING).order_by(VersionJobRow.id)
            )
            if job is None:
                return False
            job_pk, group_pk, version = job.id, job.group_pk, job.to_version
            failed = set(job.failed_face_ids or [])
            pending = session.execute(self._pending(group_pk, version).limit(self.batch + len(failed))).all()
        pending = [p for p in pending if p.face_id not in failed][: self.batch]
        if not pending:
            self._finish(job_pk)
            return True
        with_crops = [p for p in pending if p.sface_png is not None]
        vectors = self.embed_crops([(p.sface_png, p.resnet_png) for p in with_crops], version) if with_crops else []
        with self.db.session() as session:
            for row, vector in zip(with_crops, vectors, strict=True):
                if session.get(FaceRow, row.id) is not None:  # not deleted meanwhile
                    session.merge(FaceVectorRow(face_pk=row.id, version=version, embedding=to_bytes(vector)))
            job = session.get(VersionJobRow, job_pk)
            job.failed_face_ids = sorted(failed | {p.face_id for p in pending if p.sface_png is None})
            session.flush()
            job.total = self._face_count(session, group_pk)
            job.done = min(job.total, self._staged_count(session, group_pk, version) + len(job.failed_face_ids))
        return True

    @staticmethod
    def _group_faces(group_pk: int):  # type: ignore[no-untyped-def]
        return (
            select(FaceRow.id)
            .join(MembershipRow, MembershipRow.person_pk == FaceRow.person_pk)
            .where(MembershipRow.group_pk == group_pk)
        )

    def _pending(self, group_pk: int, version: str):  # type: ignore[no-untyped-def]
        staged = select(FaceVectorRow.face_pk).where(FaceVectorRow.version == version)
        return (
            select(FaceRow.id, FaceRow.face_id, FaceCropRow.sface_png, FaceCropRow.resnet_png)
            .outerjoin(FaceCropRow, FaceCropRow.face_pk == FaceRow.id)
            .where(FaceRow.id.in_(self._group_faces(group_pk)), FaceRow.id.not_in(staged))
            .order_by(FaceRow.id)
        )

    def _face_count(self, session: Session, group_pk: int) -> int:
        return int(session.scalar(select(func.count()).select_from(self._group_faces(group_pk).subquery())) or 0)

    def _staged_count(self, session: Session, group_pk: int, version: str) -> int:
        return int(
            session.scalar(
                select(func.count())
                .select_from(FaceVectorRow)
                .where(FaceVectorRow.version == version, FaceVectorRow.face_pk.in_(self._group_faces(group_pk)))
            )
            or 0
        )

    def _finish(self, job_pk: int) -> None:
        with self.db.session() as session:
            account_id = session.get(VersionJobRow, job_pk).account_id
        with self.gallery._write(account_id) as session:
            job = session.get(VersionJobRow, job_pk)
            group = session.get(GroupRow, job.group_pk)
            if group is None:  # deleted during the job
                job.status, job.finished_at = FAILED, utcnow()
                return
            failed = set(job.failed_face_ids or [])
            left = [
                r for r in session.execute(self._pending(group.id, job.to_version)).all() if r.face_id not in failed
            ]
            if left:  # faces enrolled since the last batch: another round
                return
            if self._shares_persons(session, group.id):  # CopyPerson during the job: its vectors are shared now
                job.status, job.finished_at = FAILED, utcnow()
                return
            self._swap(session, group, job.from_version, job.to_version)
            job.status, job.finished_at = UPGRADED, utcnow()
            job.total = self._face_count(session, group.id)
            job.done = job.total
        self.gallery.sync()

    def _swap(self, session: Session, group: GroupRow, current: str, target: str) -> None:
        """Faces with a `target` vector take it (their current one is kept as `current`); person features are
        fused again; the index replaces the group's entries through the change log."""
        faces = session.scalars(select(FaceRow).where(FaceRow.id.in_(self._group_faces(group.id)))).all()
        staged = {
            r.face_pk: r
            for r in session.scalars(
                select(FaceVectorRow).where(
                    FaceVectorRow.version == target, FaceVectorRow.face_pk.in_([f.id for f in faces])
                )
            )
        }
        by_person: dict[int, list[np.ndarray]] = {}
        for face in faces:
            row = staged.get(face.id)
            if row is not None:
                session.merge(FaceVectorRow(face_pk=face.id, version=current, embedding=face.embedding))
                face.embedding = row.embedding
                session.delete(row)
            by_person.setdefault(face.person_pk, []).append(from_bytes(face.embedding))
            self.gallery._log(session, group.account_id, "put_face", group.id, face.id)
        for person_pk, vectors in by_person.items():
            person = session.get(PersonRow, person_pk)
            person.feature = to_bytes(fuse(np.stack(vectors)))
            self.gallery._log(session, group.account_id, "put_person", group.id, person_pk)
        group.face_model_version = target
        group.updated_at = utcnow()


def has_running_jobs(db) -> bool:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(select(VersionJobRow.id).where(VersionJobRow.status == RUNNING).limit(1)) is not None


def failed_faces_url(face_ids: list[str]) -> str:
    """Tencent answers a URL of a JSON file of the faces that could not be upgraded; facecloud serves no files,
    so the URL carries the JSON itself (a data: URL), empty when no face failed."""
    if not face_ids:
        return ""
    body = json.dumps({"FaceIds": face_ids}).encode()
    return "data:application/json;base64," + base64.b64encode(body).decode()
