"""The Milvus vector index (pymilvus MilvusClient): a Milvus server or cluster by URL, or milvus-lite by a
file path.

One collection per kind (faces, persons); a row is one (group, item) entry with primary key "group:item", the
account as partition key (a cluster spreads accounts over partitions and prunes them at search time) and the group
as a scalar filtered on. Deletes are by primary key or by group filter, searched with Strong consistency, so they take
effect at once. The database epoch and the last change-log sequence applied live in a small meta collection: the
index is shared by every process, and the gallery replays the log into it under the database write lock so that
replays never interleave."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

import numpy as np

from facecloud.gallery.index.base import Change, Hit

log = logging.getLogger(__name__)

DIM = 128
PREFIX = "facecloud_"
META = PREFIX + "meta"
INSERT_BATCH = 5_000
# Strong: a read sees every write acknowledged before it, whichever process made it (the index is shared by every
# node). Session only covers a client's own writes, and a Milvus 2.3 server did not honour it for pymilvus 3 clients
# at all (a just-upserted row was missing from searches: tests/gallery/test_gallery_backends.py).
CONSISTENCY = "Strong"
# An explicit HNSW index, not AUTOINDEX, so that the build and the search effort are ours: AUTOINDEX searched with the
# server's own effort gave recall@10 0.74 against exact search at 100k and 1M faces (bench/search.py, measured).
INDEX_TYPE = "HNSW"
HNSW_BUILD = {"M": 16, "efConstruction": 200}
# The graph search's candidate list: at least k (Milvus refuses ef < k). SEARCH_EF: the smallest of 128/256/512 that
# gave recall@10 >= 0.95 against exact search at 1M faces of bench/search.py's galleries on the server (scaling.md).
SEARCH_EF = 512
SEARCH_LIMIT = 16384  # Milvus's largest top-k
INDEX_WAIT_S = 3600.0  # a rebuild waits this long at most for the server to index what it loaded
MIN_INDEXED_ROWS = 1024  # Milvus 2.3 builds no index for a smaller segment (minSegmentNumRowsToEnableIndex)


class MilvusIndex:
    shared = True

    def __init__(self, uri: str, prefix: str = PREFIX) -> None:
        from pymilvus import MilvusClient

        self.client = MilvusClient(uri)
        self.lite = uri.endswith(".db")  # pymilvus's own rule: a local .db file is run with milvus-lite
        self.prefix = prefix
        self.meta = prefix + "meta"
        self._ensure_meta()
        self._applied_seq, self._epoch = self._read_meta()

    # ---- collections
    def _collection(self, kind: str) -> str:
        return f"{self.prefix}{kind}"

    def _ensure_meta(self) -> None:
        from pymilvus import DataType

        if self.client.has_collection(self.meta):
            return
        schema = self.client.create_schema(auto_id=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=32)
        schema.add_field("value", DataType.VARCHAR, max_length=256)
        schema.add_field("dummy", DataType.FLOAT_VECTOR, dim=2)
        params = self.client.prepare_index_params()
        params.add_index("dummy", index_type="FLAT", metric_type="L2")
        self.client.create_collection(self.meta, schema=schema, index_params=params, consistency_level=CONSISTENCY)

    def _create(self, kind: str) -> None:
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=48)
        schema.add_field("account_id", DataType.INT64, is_partition_key=True)
        schema.add_field("group_pk", DataType.INT64)
        schema.add_field("item_pk", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        params = self.client.prepare_index_params()
        params.add_index("vector", index_type=INDEX_TYPE, metric_type="IP", params=HNSW_BUILD)
        self.client.create_collection(
            self._collection(kind), schema=schema, index_params=params, consistency_level=CONSISTENCY
        )

    def _read_meta(self) -> tuple[int, str]:
        rows = self.client.query(self.meta, filter='key in ["seq", "epoch"]', output_fields=["key", "value"])
        values = {r["key"]: r["value"] for r in rows}
        return int(values.get("seq", "0")), values.get("epoch", "")

    def _write_meta(self, **values: str) -> None:
        self.client.upsert(self.meta, [{"key": k, "value": v, "dummy": [0.0, 0.0]} for k, v in values.items()])

    # ---- state
    @property
    def applied_seq(self) -> int:
        return self._applied_seq

    def refresh(self) -> None:
        """Re-reads the shared watermark (another process may have applied changes)."""
        self._applied_seq, self._epoch = self._read_meta()

    def is_current(self, epoch: str) -> bool:
        """True when the index holds this database epoch in collections built as this module builds them (an
        installation whose collections were built with another index type is rebuilt once)."""
        return self._epoch == epoch and all(self._has_current_collection(k) for k in ("face", "person"))

    def _has_current_collection(self, kind: str) -> bool:
        collection = self._collection(kind)
        if not self.client.has_collection(collection):
            return False
        return self.client.describe_index(collection, "vector").get("index_type") == INDEX_TYPE

    def reset(self, epoch: str) -> None:
        for kind in ("face", "person"):
            if self.client.has_collection(self._collection(kind)):
                self.client.drop_collection(self._collection(kind))
            self._create(kind)
        self._write_meta(epoch="", seq="0")
        self._applied_seq, self._epoch = 0, ""

    def finish_rebuild(self, epoch: str, seq: int) -> None:
        for kind in ("face", "person"):
            self.client.flush(self._collection(kind))
        for kind in ("face", "person"):
            self._wait_until_indexed(self._collection(kind))
        self._write_meta(epoch=epoch, seq=str(seq))
        self._applied_seq, self._epoch = seq, epoch

    def _wait_until_indexed(self, collection: str) -> None:
        """Returns once every flushed row is in a segment that the server searches through its HNSW index. Until
        then the Milvus 2.3.5 server searched the loaded segments without it (recall@10 0.72 at 100k right after the
        flush, the same at every ef), and the query node took the indexed segment 4 s after the index was built
        (measured). Past INDEX_WAIT_S the rebuild goes on (searches stay correct, only less complete)."""
        deadline = time.monotonic() + INDEX_WAIT_S
        while not self._searched_through_index(collection):
            if time.monotonic() > deadline:
                log.warning("Milvus has not indexed %s after %.0f s; searching it as it is", collection, INDEX_WAIT_S)
                return
            time.sleep(0.5)

    def _searched_through_index(self, collection: str) -> bool:
        # Not pending_index_rows == 0: the server then compacts the flushed segments into larger ones and indexes
        # those again (660k rows pending for minutes at 1M, measured), while the indexed originals serve searches.
        progress = self.client.describe_index(collection, "vector")
        total = progress.get("total_rows", 0)
        if progress.get("indexed_rows", 0) < total:
            return False
        if self.lite:
            return True  # milvus-lite has no segment listing (not implemented)
        segments = self.client.list_loaded_segments(collection)
        # Every flushed row in a loaded segment (while the query node swaps the flushed segments in, none may be
        # listed: seen in CI), and every sealed one that is large enough searched through its index; growing
        # segments (writes of other nodes meanwhile) and small ones are searched exhaustively, never indexed.
        if sum(s.num_rows for s in segments) < total:
            return False
        return all(s.index_name for s in segments if s.state_name == "Sealed" and s.num_rows >= MIN_INDEXED_ROWS)

    # ---- writes
    def load_entries(self, kind: str, account_id: int, group_pk: int, items: np.ndarray, vectors: np.ndarray) -> None:
        for start in range(0, len(items), INSERT_BATCH):
            rows = [
                _row(account_id, group_pk, int(i), v)
                for i, v in zip(items[start : start + INSERT_BATCH], vectors[start : start + INSERT_BATCH], strict=True)
            ]
            self.client.insert(self._collection(kind), rows)

    def apply(self, changes: Sequence[Change], up_to_seq: int) -> None:
        batch: list[Change] = []
        for change in changes:
            if batch and (change.op, change.kind) != (batch[0].op, batch[0].kind):
                self._apply_batch(batch)
                batch = []
            batch.append(change)
        if batch:
            self._apply_batch(batch)
        self._write_meta(seq=str(up_to_seq))
        self._applied_seq = up_to_seq

    def _apply_batch(self, batch: list[Change]) -> None:
        first = batch[0]
        if first.op == "drop_group":
            for change in batch:
                for kind in ("face", "person"):
                    self.client.delete(self._collection(kind), filter=f"group_pk == {change.group_pk}")
        elif first.op == "put":
            rows = [_row(c.account_id, c.group_pk, c.item_pk, c.vector) for c in batch if c.vector is not None]
            if rows:
                self.client.upsert(self._collection(first.kind), rows)
        else:
            self.client.delete(self._collection(first.kind), ids=[f"{c.group_pk}:{c.item_pk}" for c in batch])

    # ---- reads
    def search(
        self, kind: str, account_id: int, group_pks: Sequence[int], queries: np.ndarray, k: int
    ) -> list[dict[int, list[Hit]]]:
        results: list[dict[int, list[Hit]]] = [{} for _ in range(len(queries))]
        data = [q.astype(np.float32).tolist() for q in queries]
        for group_pk in group_pks:
            found = self.client.search(
                self._collection(kind),
                data=data,
                limit=min(k, SEARCH_LIMIT),
                output_fields=["item_pk"],
                # Only the group: a group pk names one group of one account (the gallery resolved it for this account),
                # and a Milvus 2.3 server filtering on the partition key missed every row not yet sealed (measured).
                filter=f"group_pk == {int(group_pk)}",
                search_params={"metric_type": "IP", "params": {"ef": search_ef(k)}},
                consistency_level=CONSISTENCY,
            )
            for row, hits in enumerate(found):
                results[row][group_pk] = [
                    Hit(group_pk, int(h["entity"]["item_pk"]), float(h["distance"])) for h in hits
                ]
        return results

    def count(self, kind: str, group_pks: Iterable[int]) -> int:
        pks = [int(p) for p in group_pks]
        if not pks:
            return 0
        rows = self.client.query(
            self._collection(kind),
            filter=f"group_pk in {pks}",
            output_fields=["count(*)"],
            consistency_level=CONSISTENCY,
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def memory_bytes(self) -> int:
        return 0  # held by the Milvus server

    def save(self) -> None:
        pass  # Milvus persists on its own

    def close(self) -> None:
        self.client.close()


def search_ef(k: int) -> int:
    return max(SEARCH_EF, min(k, SEARCH_LIMIT))


def _row(account_id: int, group_pk: int, item_pk: int, vector: np.ndarray) -> dict:
    return {
        "pk": f"{group_pk}:{item_pk}",
        "account_id": int(account_id),
        "group_pk": int(group_pk),
        "item_pk": int(item_pk),
        "vector": np.asarray(vector, dtype=np.float32).tolist(),
    }
