"""The vector index, derived from the database: loaded, caught up from the change log, rebuilt, maintained.

The index catches up from the change log (gallery_changes) after each commit and before each search, so a crash
at any point leaves rows and vectors consistent (a vector only exists for a committed row, and a committed row is
indexed on the next sync, in this or any other process)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facecloud.gallery.fusion import from_bytes
from facecloud.gallery.index.base import Change, VectorIndex
from facecloud.gallery.models import ChangeRow, FaceRow, GroupRow, MembershipRow, PersonRow, StateRow
from facecloud.gallery.writes import Writes

SYNC_BATCH = 20_000
# A rebuild reads each group's rows in chunks of this many (a 10M-face group's rows would take ~7 GB at once).
REBUILD_CHUNK = 100_000
# Change-log rows kept behind the newest (and behind what this process's index applied): an index further behind
# than that (a node down for long) rebuilds from the database instead of replaying.
LOG_KEEP = 100_000


class IndexSync(Writes):
    epoch: str
    _sync_lock: threading.Lock
    _ready: bool
    _closed: bool

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

    def sync(self) -> None:
        """Brings the index up to the database: rebuild when it belongs to another epoch, else replay the log.

        A shared index (Milvus: one for all processes) is replayed under the database write lock, so two processes
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
                        .execution_options(yield_per=REBUILD_CHUNK)
                    )
                    loaded += sum(self._load(chunk, "face", account_id, group_pk) for chunk in faces.partitions())
                    persons = conn.execute(
                        select(PersonRow.id, PersonRow.feature)
                        .join(MembershipRow, MembershipRow.person_pk == PersonRow.id)
                        .where(MembershipRow.group_pk == group_pk, PersonRow.feature.is_not(None))
                        .execution_options(yield_per=REBUILD_CHUNK)
                    )
                    for chunk in persons.partitions():
                        self._load(chunk, "person", account_id, group_pk)
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


def index_from_settings(settings) -> VectorIndex:  # type: ignore[no-untyped-def]
    backend = getattr(settings, "vector_backend", "embedded")
    if backend == "milvus":
        from facecloud.gallery.index.milvus import MilvusIndex

        prefix = getattr(settings, "milvus_collection_prefix", "facecloud_")
        return MilvusIndex(settings.milvus_uri or str(settings.data_dir / "milvus.db"), prefix)
    if backend != "embedded":
        raise ValueError(f"unknown vector backend {backend!r} (embedded or milvus)")
    from facecloud.gallery.index.embedded import EmbeddedIndex

    return EmbeddedIndex(settings.data_dir / "gallery-index")
