"""The two layouts of a group in the embedded index: `ExactIndex` for small groups, `IvfRefine` for large ones.

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
(500..2000), PQ codes of the vectors rather than of their residuals."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

DIM = 128
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


def last_of_each(items: np.ndarray) -> np.ndarray:
    """Positions of the last occurrence of each item (a batch may put one item twice: the later one wins)."""
    _, first_in_reversed = np.unique(items[::-1], return_index=True)
    return np.sort(len(items) - 1 - first_in_reversed)


class ExactIndex:
    """Brute force over float32 vectors (IndexFlatIP behind an id map): groups up to embedded.ANN_THRESHOLD."""

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


def trained_ivf(items: np.ndarray, vectors: np.ndarray, seed: int) -> IvfRefine:
    return IvfRefine.build(items, vectors, seed)


def read_group(directory: Path, entry: dict) -> ExactIndex | IvfRefine:
    if entry.get("layout") == LAYOUT:
        return IvfRefine.read(directory / entry["file"])
    index = faiss.read_index(str(directory / entry["file"]))
    if isinstance(index, faiss.IndexIVF):
        raise ValueError("an index of an older layout: rebuilt from the database")
    return ExactIndex(index)
