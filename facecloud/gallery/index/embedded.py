"""The embedded vector index: in-process FAISS, one index per (kind, group).

A group is an exact index while small and an `IvfRefine` index (IVF + 4-bit PQ fast-scan candidates re-ranked
against fp16 copies) once it passes `ANN_THRESHOLD` entries: `facecloud/gallery/index/layouts.py`.

It is retrained when it has grown 4x since its last training, so the lists stay balanced, or when removed entries
(tombstoned, see `IvfRefine.dead`) pass 1/8 of the live ones. Training runs in the gallery's maintenance thread
(`maintain()`), on a snapshot and off the group's lock, never on a request's thread: until it is done the group is
searched as before (exactly, or with the old lists), and the writes meanwhile are replayed onto the new index. A
rebuild from the database stages the vectors (fp16 once a group is large) and trains each large group once, before
serving.

Per-group indexes make group filtering exact and cheap (no post-filter starving an approximate search) and make
deleting a group O(1); the price is one copy of a face per group its person belongs to (documented in
docs/scaling.md). Account isolation follows: a group belongs to one account and searches name groups by their keys.

The index is saved next to the database (a directory of FAISS and numpy files and a manifest holding the database
epoch and the last change-log sequence number it reflects); on start it is loaded and caught up from the change log,
or rebuilt from the database when missing, unreadable, of another epoch or of an older layout."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import faiss
import numpy as np

from facecloud.gallery.index.base import Change, Hit
from facecloud.gallery.index.layouts import (
    LAYOUT,
    ExactIndex,
    IvfRefine,
    last_of_each,
    read_group,
    trained_ivf,
)

ANN_THRESHOLD = 20_000
RETRAIN_GROWTH = 4
MAX_DEAD_SHARE = 0.125  # retrained (dropping removed entries' codes) past this many dead slots per live entry


class GroupIndex:
    def __init__(
        self, kind: str, account_id: int, group_pk: int, index: ExactIndex | IvfRefine | None = None, trained_n: int = 0
    ) -> None:
        self.kind = kind
        self.account_id = account_id
        self.group_pk = group_pk
        self.index: ExactIndex | IvfRefine = index if index is not None else ExactIndex()
        self.trained_n = trained_n
        self.lock = threading.Lock()
        # While a background training runs: the puts and removes since its snapshot, replayed onto the new index.
        self._during_training: list[tuple[np.ndarray, np.ndarray | None]] | None = None
        # During a rebuild from the database: the loaded chunks, fp16 once the group is past the exact-search size.
        self._staged: list[tuple[np.ndarray, np.ndarray]] = []
        self._staged_n = 0

    @property
    def is_ivf(self) -> bool:
        return isinstance(self.index, IvfRefine)

    @property
    def size(self) -> int:
        return self.index.size

    @property
    def needs_training(self) -> bool:
        if not isinstance(self.index, IvfRefine):
            return self.size > ANN_THRESHOLD
        return self.size > RETRAIN_GROWTH * self.trained_n or self.index.dead > self.size * MAX_DEAD_SHARE

    def put(self, items: np.ndarray, vectors: np.ndarray) -> None:
        last = last_of_each(items)
        items, vectors = items[last].astype(np.int64), vectors[last]
        with self.lock:
            self.index.put(items, vectors)
            if self._during_training is not None:
                self._during_training.append((items, vectors))

    def remove(self, items: np.ndarray) -> None:
        with self.lock:
            self.index.remove(items.astype(np.int64))
            if self._during_training is not None:
                self._during_training.append((items, None))

    def stage(self, items: np.ndarray, vectors: np.ndarray) -> None:
        """Bulk load of a rebuild: kept aside (not searchable) until `build_staged`."""
        with self.lock:
            self._staged.append((items.astype(np.int64), vectors))
            self._staged_n += len(items)
            if self._staged_n > ANN_THRESHOLD:  # it will be an IvfRefine: hold fp16 (half the memory) meanwhile
                self._staged = [(i, v.astype(np.float16, copy=False)) for i, v in self._staged]

    def build_staged(self) -> None:
        with self.lock:
            staged, self._staged, self._staged_n = self._staged, [], 0
        if not staged:
            return
        items = np.concatenate([i for i, _ in staged])
        vectors = np.concatenate([v for _, v in staged])
        staged.clear()
        if len(items) <= ANN_THRESHOLD:
            self.put(items, vectors.astype(np.float32))
            return
        ivf = trained_ivf(items, vectors, self.group_pk)
        with self.lock:
            self.index, self.trained_n = ivf, len(items)

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(items, vectors) of every entry (vectors float32; fp16-exact for an IVF index)."""
        return self.index.entries()

    def train(self) -> bool:
        """(Re)trains the IVF index from a snapshot, off the lock, so searches and writes of the group go on
        meanwhile; returns whether it trained. Called by the index maintenance, never on a request's thread."""
        with self.lock:
            if not self.needs_training or self._during_training is not None:
                return False
            items, vectors = self.entries()
            self._during_training = []
        try:
            ivf = trained_ivf(items, vectors, self.group_pk)
        except BaseException:
            with self.lock:
                self._during_training = None
            raise
        with self.lock:
            for changed, added in self._during_training:
                if added is None:
                    ivf.remove(changed)
                else:
                    ivf.put(changed, added)
            self._during_training = None
            self.index = ivf
            self.trained_n = len(items)
        return True

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            if not self.size:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, self.size))

    def memory_bytes(self) -> int:
        return self.index.memory_bytes()

    def write(self, directory: Path, stem: str) -> dict:
        """Saves the index under directory/stem.*; returns the manifest entry."""
        entry = {"kind": self.kind, "group_pk": self.group_pk, "account_id": self.account_id}
        with self.lock:
            if isinstance(self.index, IvfRefine):
                self.index.write(directory / stem)
                return {**entry, "file": stem, "layout": LAYOUT, "trained_n": self.trained_n}
            faiss.write_index(self.index.index, str(directory / f"{stem}.faiss"))
            return {**entry, "file": f"{stem}.faiss", "layout": "exact", "trained_n": self.trained_n}


class EmbeddedIndex:
    """Thread-safe (a lock per group, one for the group map). One per process."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._groups: dict[tuple[str, int], GroupIndex] = {}
        self._lock = threading.RLock()
        self._epoch = ""
        self._applied_seq = 0
        self._loaded = self._load()

    # ---- state
    # -------------------------------------------------------------------------------------------------
    @property
    def applied_seq(self) -> int:
        return self._applied_seq

    def is_current(self, epoch: str) -> bool:
        return self._loaded and self._epoch == epoch

    def reset(self, epoch: str) -> None:
        with self._lock:
            self._groups = {}
            self._epoch = epoch
            self._applied_seq = 0
            self._loaded = False

    def finish_rebuild(self, epoch: str, seq: int) -> None:
        with self._lock:
            groups = list(self._groups.values())
        for group in groups:
            group.build_staged()
        self.maintain()
        with self._lock:
            self._epoch = epoch
            self._applied_seq = seq
            self._loaded = True

    # ---- writes
    # ------------------------------------------------------------------------------------------------
    def _group(self, kind: str, account_id: int, group_pk: int) -> GroupIndex:
        with self._lock:
            group = self._groups.get((kind, group_pk))
            if group is None:
                group = self._groups[(kind, group_pk)] = GroupIndex(kind, account_id, group_pk)
            return group

    def load_entries(self, kind: str, account_id: int, group_pk: int, items: np.ndarray, vectors: np.ndarray) -> None:
        if len(items):
            self._group(kind, account_id, group_pk).stage(items, vectors)

    def apply(self, changes: Sequence[Change], up_to_seq: int) -> None:
        """Replays changes in order; consecutive puts/deletes on one group are batched."""
        with self._lock:
            batch: list[Change] = []
            for change in changes:
                if batch and (change.op, change.kind, change.group_pk) != (
                    batch[0].op,
                    batch[0].kind,
                    batch[0].group_pk,
                ):
                    self._apply_batch(batch)
                    batch = []
                batch.append(change)
            if batch:
                self._apply_batch(batch)
            self._applied_seq = max(self._applied_seq, up_to_seq)

    def _apply_batch(self, batch: list[Change]) -> None:
        first = batch[0]
        if first.op == "drop_group":
            for kind in ("face", "person"):
                self._groups.pop((kind, first.group_pk), None)
            return
        if first.op == "put":
            live = [c for c in batch if c.vector is not None]
            if live:
                group = self._group(first.kind, first.account_id, first.group_pk)
                group.put(np.array([c.item_pk for c in live], np.int64), np.stack([c.vector for c in live]))
            return
        group = self._groups.get((first.kind, first.group_pk))
        if group is not None:
            group.remove(np.array([c.item_pk for c in batch], np.int64))

    def maintain(self) -> int:
        """Trains or retrains every group that grew past its exact-search size or 4x since its last training;
        returns how many. The gallery's maintenance thread calls it (and a rebuild, before serving)."""
        with self._lock:
            groups = list(self._groups.values())
        return sum(group.train() for group in groups)

    # ---- reads
    # -------------------------------------------------------------------------------------------------
    def search(
        self, kind: str, account_id: int, group_pks: Sequence[int], queries: np.ndarray, k: int
    ) -> list[dict[int, list[Hit]]]:
        results: list[dict[int, list[Hit]]] = [{} for _ in range(len(queries))]
        for group_pk in group_pks:
            group = self._groups.get((kind, group_pk))
            if group is None or group.account_id != account_id:
                for per_query in results:
                    per_query[group_pk] = []
                continue
            similarities, items = group.search(queries, k)
            for row, per_query in enumerate(results):
                per_query[group_pk] = [
                    Hit(group_pk, int(item), float(sim))
                    for sim, item in zip(similarities[row], items[row], strict=True)
                    if item >= 0
                ]
        return results

    def count(self, kind: str, group_pks: Iterable[int]) -> int:
        return sum(g.size for pk in group_pks if (g := self._groups.get((kind, pk))) is not None)

    def memory_bytes(self) -> int:
        return sum(g.memory_bytes() for g in list(self._groups.values()))

    # ---- persistence
    # -------------------------------------------------------------------------------------------
    def save(self) -> None:
        """Writes a consistent snapshot (under the lock) to a fresh folder, then swaps it in."""
        with self._lock:
            if not self._loaded:
                return
            tmp = self.directory.with_name(self.directory.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            manifest = {"epoch": self._epoch, "seq": self._applied_seq, "groups": []}
            for number, (_key, group) in enumerate(sorted(self._groups.items())):
                if not group.size:
                    continue
                manifest["groups"].append(group.write(tmp, str(number)))
            (tmp / "manifest.json").write_text(json.dumps(manifest))
            old = self.directory.with_name(self.directory.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            if self.directory.exists():
                self.directory.rename(old)
            tmp.rename(self.directory)
            shutil.rmtree(old, ignore_errors=True)

    def _load(self) -> bool:
        manifest_path = self.directory / "manifest.json"
        if not manifest_path.exists():
            return False
        try:
            manifest = json.loads(manifest_path.read_text())
            groups = {}
            for entry in manifest["groups"]:
                index = read_group(self.directory, entry)
                groups[(entry["kind"], entry["group_pk"])] = GroupIndex(
                    entry["kind"], entry["account_id"], entry["group_pk"], index, entry["trained_n"]
                )
        except (OSError, ValueError, KeyError, RuntimeError):
            return False  # unreadable: the gallery rebuilds it from the database
        self._groups = groups
        self._epoch = manifest["epoch"]
        self._applied_seq = int(manifest["seq"])
        return True

    def close(self) -> None:
        self.save()
