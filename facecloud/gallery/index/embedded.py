"""The embedded vector index: in-process FAISS, one index per (kind, group).

Small groups are searched exactly (IndexFlatIP). A group that grows past `ann_threshold` entries becomes an
IVF index
with fp16 vectors (IndexIVFScalarQuantizer QT_fp16): 256 bytes per vector, k-means on a sample (seconds at
1M), and a
probe count chosen for recall@10 >= 0.95 against exact search at 1M (bench/search.py measures it). It is retrained
when it has
grown 4x since its last training, so the lists stay balanced. Training runs in the gallery's maintenance thread
(`maintain()`), on a snapshot and off the group's lock, never on a request's thread: until it is done the group is
searched as before (exactly, or with the old lists), and the writes meanwhile are replayed onto the new index.

Per-group indexes make group filtering exact and cheap (no post-filter starving an approximate search) and
make
deleting a group O(1); the price is one copy of a face per group its person belongs to (documented in
docs/scaling.md). Account isolation follows: a group belongs to one account and searches name groups by
their keys.

The index is saved next to the database (a directory of FAISS files and a manifest holding the database
epoch and the
last change-log sequence number it reflects); on start it is loaded and caught up from the change log, or
rebuilt from
the database when missing, unreadable or of another epoch."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import faiss
import numpy as np

from facecloud.gallery.index.base import Change, Hit

DIM = 128
ANN_THRESHOLD = 20_000
RETRAIN_GROWTH = 4
TRAIN_SAMPLE_PER_LIST = 48


def _nlist_for(n: int) -> int:
    return int(min(4096, max(64, 2 ** round(np.log2(np.sqrt(n))))))


def _nprobe_for(nlist: int) -> int:
    # Measured on LFW-shaped vectors at 1M faces (nlist 1024): nlist/6 probes gave recall@1 0.993 but recall@10 only
    # 0.855 (SearchPersons' ranks 2-10 differed from exact search); 3/8 of the lists gives recall@10 0.950 for about
    # 2.5x the scan (p50 5.9 -> 14.3 ms on a busy 2-core host; bench/search_probes.py, docs/scaling.md).
    return min(nlist, max(64, nlist * 3 // 8))


# One query is answered on the calling thread: OpenMP teams per query only add spin-waiting under a
# threaded server
# (measured 20 ms instead of 0.5 ms on a busy 2-core host); training uses every core for its duration.
faiss.omp_set_num_threads(1)


def _trained_ivf(items: np.ndarray, vectors: np.ndarray, seed: int) -> faiss.IndexIVF:
    nlist = _nlist_for(len(items))
    quantizer = faiss.IndexFlatIP(DIM)
    fp16 = faiss.ScalarQuantizer.QT_fp16
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, DIM, nlist, fp16, faiss.METRIC_INNER_PRODUCT)
    sample_size = min(len(vectors), nlist * TRAIN_SAMPLE_PER_LIST)
    sample = vectors[np.random.default_rng(seed).choice(len(vectors), sample_size, replace=False)]
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        ivf.train(sample)
        ivf.add_with_ids(vectors, items)
    finally:
        faiss.omp_set_num_threads(1)
    ivf.nprobe = _nprobe_for(nlist)
    return ivf  # (faiss's Python wrapper keeps the quantizer referenced by the index)


class GroupIndex:
    def __init__(
        self, kind: str, account_id: int, group_pk: int, index: faiss.Index | None = None, trained_n: int = 0
    ) -> None:
        self.kind = kind
        self.account_id = account_id
        self.group_pk = group_pk
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
        self.trained_n = trained_n
        self.lock = threading.Lock()
        # While a background training runs: the puts and removes since its snapshot, replayed onto the new index.
        self._during_training: list[tuple[np.ndarray, np.ndarray | None]] | None = None

    @property
    def is_ivf(self) -> bool:
        return isinstance(self.index, faiss.IndexIVF)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def needs_training(self) -> bool:
        return (not self.is_ivf and self.size > ANN_THRESHOLD) or (
            self.is_ivf and self.size > RETRAIN_GROWTH * self.trained_n
        )

    def put(self, items: np.ndarray, vectors: np.ndarray) -> None:
        with self.lock:
            self._put(self.index, items, vectors)
            if self._during_training is not None:
                self._during_training.append((items, vectors))

    def remove(self, items: np.ndarray) -> None:
        with self.lock:
            self._remove(self.index, items)
            if self._during_training is not None:
                self._during_training.append((items, None))

    @staticmethod
    def _put(index: faiss.Index, items: np.ndarray, vectors: np.ndarray) -> None:
        GroupIndex._remove(index, items)
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), items.astype(np.int64))

    @staticmethod
    def _remove(index: faiss.Index, items: np.ndarray) -> None:
        if index.ntotal and len(items):
            index.remove_ids(faiss.IDSelectorBatch(items.astype(np.int64)))

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(items, vectors) of every entry (vectors float32; fp16-exact for an IVF index)."""
        if not self.is_ivf:
            items = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            vectors = self.index.index.reconstruct_n(0, self.size) if self.size else np.zeros((0, DIM), np.float32)
            return items, vectors
        lists = self.index.invlists
        items, vectors = [], []
        for number in range(self.index.nlist):
            count = lists.list_size(number)
            if not count:
                continue
            items.append(faiss.rev_swig_ptr(lists.get_ids(number), count).copy())
            codes = faiss.rev_swig_ptr(lists.get_codes(number), count * lists.code_size).copy()
            vectors.append(codes.view(np.float16).reshape(count, DIM).astype(np.float32))
        if not items:
            return np.zeros(0, np.int64), np.zeros((0, DIM), np.float32)
        return np.concatenate(items), np.concatenate(vectors)

    def train(self) -> bool:
        """(Re)trains the IVF index from a snapshot, off the lock, so searches and writes of the group go on
        meanwhile; returns whether it trained. Called by the index maintenance, never on a request's thread."""
        with self.lock:
            if not self.needs_training or self._during_training is not None:
                return False
            items, vectors = self.entries()
            self._during_training = []
        try:
            ivf = _trained_ivf(items, vectors, self.group_pk)
        except BaseException:
            with self.lock:
                self._during_training = None
            raise
        with self.lock:
            for changed, added in self._during_training:
                if added is None:
                    self._remove(ivf, changed)
                else:
                    self._put(ivf, changed, added)
            self._during_training = None
            self.index = ivf
            self.trained_n = len(items)
        return True

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            if not self.size:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            similarities, items = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, self.size))
        return similarities, items

    def memory_bytes(self) -> int:
        if self.is_ivf:
            return self.size * (DIM * 2 + 8) + self.index.nlist * DIM * 4
        return self.size * (DIM * 4 + 8)


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
            self._group(kind, account_id, group_pk).put(items, vectors)

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
            for number, ((kind, group_pk), group) in enumerate(sorted(self._groups.items())):
                if not group.size:
                    continue
                file = f"{number}.faiss"
                with group.lock:
                    faiss.write_index(group.index, str(tmp / file))
                manifest["groups"].append(
                    {
                        "kind": kind,
                        "group_pk": group_pk,
                        "account_id": group.account_id,
                        "file": file,
                        "trained_n": group.trained_n,
                    }
                )
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
                index = faiss.read_index(str(self.directory / entry["file"]))
                if isinstance(index, faiss.IndexIVF):
                    index.nprobe = _nprobe_for(index.nlist)
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
