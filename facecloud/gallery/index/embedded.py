"""The embedded vector index: in-process FAISS, one index per (kind, group).

Small groups are searched exactly (IndexFlatIP, float32). A group that grows past `ANN_THRESHOLD` entries becomes
an `IvfRefine` index, the layout of Milvus's SCANN index: an IVF index with 4-bit PQ fast-scan codes
(IndexIVFPQFastScan, 64 sub-quantizers of 2 dimensions: 32 bytes per vector, scanned with SIMD table lookups
several times faster than fp16 vectors) proposes 500-2000 candidates, which are re-ranked exactly against fp16
copies of the vectors kept in a compact slot store (256 bytes per vector).

Why: on face embeddings the 6th-10th neighbours of a query are other identities at near-equal similarity scattered
over the space, so the coarse stage must scan a large share of the lists to keep recall@10 >= 0.95 (3/8 of them
with the former fp16 IVF at 1M); fast-scan codes make that scan cheap, and the exact re-rank restores the order
among the near-ties (32 sub-quantizers instead of 64 lost a tenth of recall@10 that no shortlist length won back).
Memory per face about 320 bytes: fp16 vector 256, PQ code 32, candidate id 8, item of each slot 8, item -> slot
lookup 16 (+ centroids and block padding); 1M faces 318 MB, 10M 3.2 GB. Parameters (chosen with
bench/search_probes.py, measured with bench/search.py; docs/scaling.md, "The 10M-face search"): nlist = sqrt(n) as a
power of two, the share of lists probed falling as the lists fill (PROBE_SHARES), a shortlist of n/10,000 candidates
(500..2000), PQ codes of the vectors rather than of their residuals.

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

DIM = 128
ANN_THRESHOLD = 20_000
RETRAIN_GROWTH = 4
MAX_DEAD_SHARE = 0.125  # retrained (dropping removed entries' codes) past this many dead slots per live entry
TRAIN_SAMPLE_PER_LIST = 40
PQ_SUBQUANTIZERS = 64  # 4 bits each: 32-byte codes (one per 2 dimensions)
SLOT_BLOCK = 1 << 16  # the slot store grows by blocks: no reallocation of the whole store as a group grows
ADD_CHUNK = 1 << 18
LAYOUT = "ivfpq-fastscan-refine-fp16"
FREE, DEAD = -1, -2  # owners of slots without an entry


def _nlist_for(n: int) -> int:
    # sqrt(n) lists rather than 2 sqrt(n): the same recall for the same share probed, fewer lists to visit (1M: p50
    # 2.2 vs 3.1 ms at 7/16, recall@10 0.971 vs 0.970; bench/search_probes.py).
    return int(min(16384, max(64, 2 ** round(np.log2(np.sqrt(n))))))


# The share of the lists probed that keeps recall@10 >= 0.95 against exact search falls as the lists fill
# (bench/search_probes.py, 300 queries, 500 re-ranked): 100k faces (256 lists): 1/2 -> 0.958, 5/8 -> 0.980; 1M (1024):
# 7/16 -> 0.971; 10M (4096): 5/16 -> 0.957 (0.965 with 1,000 re-ranked), 7/16 -> 0.975 for 6 ms more.
PROBE_SHARES = ((256, 5 / 8), (2048, 7 / 16), (16384, 5 / 16))  # (up to this many lists, share probed)


def _nprobe_for(nlist: int) -> int:
    share = next(share for most, share in PROBE_SHARES if nlist <= most)
    return min(nlist, max(64, int(nlist * share)))


def _shortlist_for(n: int) -> int:
    """Candidates re-ranked exactly: the denser the group, the more PQ near-ties around the 10th neighbour."""
    return int(min(2000, max(500, n // 10_000)))


# Everything runs on the calling thread: OpenMP teams only add spin-waiting on a busy host (a query: 20 ms instead of
# 0.5 ms under a threaded server; training 50k vectors: 9.1 s with 2 threads instead of 0.9 s with 1, 2-core host
# busy with other jobs), and the training runs beside the requests in the background maintenance thread.
faiss.omp_set_num_threads(1)


def _last_of_each(items: np.ndarray) -> np.ndarray:
    """Positions of the last occurrence of each item (a batch may put one item twice: the later one wins)."""
    _, first_in_reversed = np.unique(items[::-1], return_index=True)
    return np.sort(len(items) - 1 - first_in_reversed)


class ExactIndex:
    """Brute force over float32 vectors (IndexFlatIP behind an id map): for groups up to ANN_THRESHOLD."""

    def __init__(self, index: faiss.Index | None = None) -> None:
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def put(self, items: np.ndarray, vectors: np.ndarray) -> None:
        self.remove(items)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), items.astype(np.int64))

    def remove(self, items: np.ndarray) -> None:
        if self.size and len(items):
            self.index.remove_ids(faiss.IDSelectorBatch(items.astype(np.int64)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(queries, k)

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        items = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        vectors = self.index.index.reconstruct_n(0, self.size) if self.size else np.zeros((0, DIM), np.float32)
        return items, vectors

    def memory_bytes(self) -> int:
        return self.size * (DIM * 4 + 8 + 40)  # vector, id, the id map's reverse hash entry (~40 bytes)


class SlotMap:
    """item pk -> slot for millions of items at 16 bytes each: sorted numpy arrays, plus a dict of recent additions
    merged into them in batches (a Python dict alone takes ~100 bytes per item). A removed item's slot reads -1."""

    MERGE_AT = 1 << 16

    def __init__(self, items: np.ndarray, slots: np.ndarray) -> None:
        order = np.argsort(items, kind="stable")
        self.keys, self.slots = items[order], slots[order]
        self.recent: dict[int, int] = {}

    def _positions(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.keys):
            return np.zeros(len(items), np.int64), np.zeros(len(items), bool)
        positions = np.minimum(np.searchsorted(self.keys, items), len(self.keys) - 1)
        return positions, self.keys[positions] == items

    def find(self, items: np.ndarray) -> np.ndarray:
        positions, hit = self._positions(items)
        found = np.full(len(items), -1, np.int64)
        found[hit] = self.slots[positions[hit]]
        if self.recent:
            recent = np.fromiter((self.recent.get(item, -1) for item in items.tolist()), np.int64, len(items))
            found = np.where(recent >= 0, recent, found)
        return found

    def assign(self, items: np.ndarray, slots: np.ndarray) -> None:
        """Items that have no slot now."""
        positions, hit = self._positions(items)
        self.slots[positions[hit]] = slots[hit]  # known keys, removed before: reuse their place
        self.recent.update(zip(items[~hit].tolist(), slots[~hit].tolist(), strict=True))
        if len(self.recent) >= self.MERGE_AT:
            self._merge()

    def drop(self, items: np.ndarray) -> None:
        positions, hit = self._positions(items)
        self.slots[positions[hit]] = -1
        for item in items[~hit].tolist():
            self.recent.pop(item, None)

    def _merge(self) -> None:
        live = self.slots >= 0
        recent_items = np.fromiter(self.recent.keys(), np.int64, len(self.recent))
        recent_slots = np.fromiter(self.recent.values(), np.int64, len(self.recent))
        self.__init__(  # type: ignore[misc]
            np.concatenate([self.keys[live], recent_items]), np.concatenate([self.slots[live], recent_slots])
        )

    def memory_bytes(self) -> int:
        return len(self.keys) * 16 + len(self.recent) * 100


class IvfRefine:
    """Candidates from IVF + 4-bit PQ fast-scan (ids = slots), re-ranked exactly against the fp16 slot store."""

    def __init__(self, candidates: faiss.IndexIVFPQFastScan, vectors: list[np.ndarray], owners: list[np.ndarray]):
        self.candidates = candidates
        self.candidates.nprobe = _nprobe_for(candidates.nlist)
        self.shortlist = 0  # candidates re-ranked per query; 0: by the group's size (_shortlist_for)
        self.vectors = vectors  # blocks of SLOT_BLOCK fp16 vectors
        self.owners = owners  # blocks of SLOT_BLOCK item pks; FREE: never used, DEAD: its entry was removed
        owner_of_slot = np.concatenate(owners) if owners else np.zeros(0, np.int64)
        used = np.flatnonzero(owner_of_slot >= 0)
        self.slot_map = SlotMap(owner_of_slot[used], used)
        self.size = len(used)
        taken = np.flatnonzero(owner_of_slot != FREE)
        self.high = int(taken[-1]) + 1 if len(taken) else 0  # slots at and above were never used
        # Slots of removed or replaced entries: their codes stay among the candidates (faiss 1.15.1's fast-scan lists
        # corrupt the codes added after a remove_ids), are skipped at the re-rank and dropped at the next training.
        self.dead = self.high - self.size

    @classmethod
    def build(cls, items: np.ndarray, vectors: np.ndarray, seed: int) -> IvfRefine:
        """Trains on a sample and adds every vector (float32 or float16 rows), on the calling thread."""
        nlist = _nlist_for(len(items))
        candidates = faiss.IndexIVFPQFastScan(
            faiss.IndexFlatIP(DIM), DIM, nlist, PQ_SUBQUANTIZERS, 4, faiss.METRIC_INNER_PRODUCT
        )
        # Codes of the vectors, not of their residuals: one lookup table per query instead of one per probed list
        # (hundreds of lists are probed); the exact re-rank makes up for the coarser codes (1M: p50 4.4 -> 3.0 ms,
        # the same recall).
        candidates.by_residual = False
        sample_size = min(len(vectors), nlist * TRAIN_SAMPLE_PER_LIST)
        sample = vectors[np.sort(np.random.default_rng(seed).choice(len(vectors), sample_size, replace=False))]
        candidates.train(np.ascontiguousarray(sample, dtype=np.float32))
        index = cls(candidates, [], [])
        index._bulk_load(items, vectors)
        return index  # (faiss's Python wrapper keeps the quantizer referenced by the index)

    @property
    def nlist(self) -> int:
        return int(self.candidates.nlist)

    def _allocate(self, count: int) -> np.ndarray:
        fresh = np.arange(self.high, self.high + count, dtype=np.int64)
        self.high += count
        while len(self.vectors) * SLOT_BLOCK < self.high:
            self.vectors.append(np.zeros((SLOT_BLOCK, DIM), np.float16))
            self.owners.append(np.full(SLOT_BLOCK, FREE, np.int64))
        return fresh

    def _write(self, slots: np.ndarray, items: np.ndarray, vectors: np.ndarray) -> None:
        blocks, offsets = np.divmod(slots, SLOT_BLOCK)
        for block in np.unique(blocks):
            rows = blocks == block
            self.vectors[block][offsets[rows]] = vectors[rows]
            self.owners[block][offsets[rows]] = items[rows]

    @staticmethod
    def _gather(blocks: list[np.ndarray], slots: np.ndarray) -> np.ndarray:
        block_of, offsets = np.divmod(slots, SLOT_BLOCK)
        out = np.empty((len(slots), *blocks[0].shape[1:]), blocks[0].dtype) if blocks else np.zeros(0, np.int64)
        for block in np.unique(block_of):
            rows = block_of == block
            out[rows] = blocks[block][offsets[rows]]
        return out

    def _bulk_load(self, items: np.ndarray, vectors: np.ndarray) -> None:
        """Into an empty index: slot i holds items[i]."""
        slots = self._allocate(len(items))
        self._write(slots, items, vectors.astype(np.float16))
        self.slot_map = SlotMap(items.astype(np.int64), slots)
        self.size = len(items)
        for start in range(0, len(items), ADD_CHUNK):
            chunk = np.ascontiguousarray(vectors[start : start + ADD_CHUNK], dtype=np.float32)
            self.candidates.add_with_ids(chunk, slots[start : start + ADD_CHUNK])

    def put(self, items: np.ndarray, vectors: np.ndarray) -> None:
        for start in range(0, len(items), ADD_CHUNK):
            self._put(items[start : start + ADD_CHUNK], vectors[start : start + ADD_CHUNK])

    def _put(self, items: np.ndarray, vectors: np.ndarray) -> None:
        self.remove(items)  # an item put again gets a new slot
        slots = self._allocate(len(items))
        self.slot_map.assign(items, slots)
        self.size += len(items)
        self._write(slots, items, vectors.astype(np.float16))
        self.candidates.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), slots)

    def remove(self, items: np.ndarray) -> None:
        slots = self.slot_map.find(items)
        slots = slots[slots >= 0]
        if not len(slots):
            return
        self.slot_map.drop(self._gather(self.owners, slots))
        self._write(slots, np.full(len(slots), DEAD, np.int64), np.zeros((len(slots), DIM), np.float16))
        self.size -= len(slots)
        self.dead += len(slots)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.size)
        similarities = np.full((len(queries), k), -np.inf, np.float32)
        items = np.full((len(queries), k), -1, np.int64)
        wanted = max(self.shortlist or _shortlist_for(self.size), k)
        _, candidates = self.candidates.search(queries, wanted + wanted * self.dead // max(1, self.size))
        for row, (query, slots) in enumerate(zip(queries, candidates, strict=True)):
            slots = slots[slots >= 0]
            slots = slots[self._gather(self.owners, slots) >= 0]
            exact = self._gather(self.vectors, slots).astype(np.float32) @ query
            best = np.argsort(-exact, kind="stable")[:k]
            similarities[row, : len(best)] = exact[best]
            items[row, : len(best)] = self._gather(self.owners, slots[best])
        return similarities, items

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        items, vectors = [], []
        for owners, block in zip(self.owners, self.vectors, strict=True):
            used = owners >= 0
            items.append(owners[used])
            vectors.append(block[used].astype(np.float32))
        if not items:
            return np.zeros(0, np.int64), np.zeros((0, DIM), np.float32)
        return np.concatenate(items), np.concatenate(vectors)

    def memory_bytes(self) -> int:
        lists = self.candidates.invlists
        blocks = sum(-(-lists.list_size(number) // 32) for number in range(self.nlist))  # codes come in blocks of 32
        candidates = blocks * 32 * PQ_SUBQUANTIZERS // 2 + self.size * 8 + self.nlist * DIM * 4
        store = len(self.vectors) * SLOT_BLOCK * (DIM * 2 + 8)
        return candidates + store + self.slot_map.memory_bytes()

    def write(self, path: Path) -> None:
        faiss.write_index(self.candidates, str(path.with_suffix(".faiss")))
        with open(path.with_suffix(".vectors"), "wb") as vectors, open(path.with_suffix(".owners"), "wb") as owners:
            for block, block_owners in zip(self.vectors, self.owners, strict=True):
                vectors.write(block.tobytes())
                owners.write(block_owners.tobytes())

    @classmethod
    def read(cls, path: Path) -> IvfRefine:
        candidates = faiss.read_index(str(path.with_suffix(".faiss")))
        owners = np.fromfile(path.with_suffix(".owners"), np.int64)
        count = len(owners) // SLOT_BLOCK
        vectors_file = np.memmap(path.with_suffix(".vectors"), np.float16, "r", shape=(count * SLOT_BLOCK, DIM))
        vectors = [np.array(vectors_file[b * SLOT_BLOCK : (b + 1) * SLOT_BLOCK]) for b in range(count)]
        del vectors_file
        return cls(candidates, vectors, [owners[b * SLOT_BLOCK : (b + 1) * SLOT_BLOCK].copy() for b in range(count)])


def _trained_ivf(items: np.ndarray, vectors: np.ndarray, seed: int) -> IvfRefine:
    return IvfRefine.build(items, vectors, seed)


def _read_group(directory: Path, entry: dict) -> ExactIndex | IvfRefine:
    if entry.get("layout") == LAYOUT:
        return IvfRefine.read(directory / entry["file"])
    index = faiss.read_index(str(directory / entry["file"]))
    if isinstance(index, faiss.IndexIVF):
        raise ValueError("an index of an older layout: rebuilt from the database")
    return ExactIndex(index)


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
        last = _last_of_each(items)
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
        ivf = _trained_ivf(items, vectors, self.group_pk)
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
            ivf = _trained_ivf(items, vectors, self.group_pk)
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
                index = _read_group(self.directory, entry)
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
