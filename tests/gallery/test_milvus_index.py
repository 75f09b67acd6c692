"""The Milvus index's search quality settings: an explicit HNSW index searched with an ef of at least k, a rebuild
that returns only once the server searches the built index, and an upgrade from collections built otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facecloud.gallery.index import milvus
from facecloud.gallery.index.milvus import MilvusIndex

GROUP = 7


def _vectors(count: int, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors (face-like: many near neighbours), so an approximate search has something to miss."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((count // 20, milvus.DIM))
    vectors = np.repeat(centres, 20, axis=0) + 0.6 * rng.standard_normal((count, milvus.DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _rebuilt(index: MilvusIndex, vectors: np.ndarray) -> MilvusIndex:
    index.reset("epoch-1")
    index.load_entries("face", 1, GROUP, np.arange(1, len(vectors) + 1), vectors)
    index.finish_rebuild("epoch-1", 0)
    return index


def _recall_at_10(index: MilvusIndex, vectors: np.ndarray, queries: np.ndarray) -> float:
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10] + 1
    found = index.search("face", 1, [GROUP], queries, 10)
    shares = [len({h.item_pk for h in f[GROUP]} & set(e.tolist())) / 10 for f, e in zip(found, exact, strict=True)]
    return float(np.mean(shares))


def test_search_ef_is_never_below_k() -> None:
    assert milvus.search_ef(10) == milvus.SEARCH_EF
    assert milvus.search_ef(milvus.SEARCH_EF + 1) == milvus.SEARCH_EF + 1
    assert milvus.search_ef(10**6) == milvus.SEARCH_LIMIT


def test_milvus_lite_builds_hnsw_and_answers_searches_larger_than_ef(tmp_path: Path) -> None:
    vectors = _vectors(600)
    index = _rebuilt(MilvusIndex(str(tmp_path / "lite.db")), vectors)
    try:
        assert index.is_current("epoch-1")
        assert index.client.describe_index(index._collection("face"), "vector")["index_type"] == "HNSW"
        k = milvus.SEARCH_EF + 72  # ef must grow with k (a server refuses ef < k)
        hits = index.search("face", 1, [GROUP], vectors[:2], k)
        assert [len(h[GROUP]) for h in hits] == [k, k]
        assert [h[GROUP][0].item_pk for h in hits] == [1, 2]
    finally:
        index.close()


def test_collections_built_with_another_index_type_are_not_current(tmp_path: Path) -> None:
    """An installation upgraded from AUTOINDEX collections (searched with the server's default effort) is rebuilt."""
    index = _rebuilt(MilvusIndex(str(tmp_path / "lite.db")), _vectors(100))
    try:
        face = index._collection("face")
        index.client.release_collection(face)
        index.client.drop_index(face, "vector")
        params = index.client.prepare_index_params()
        params.add_index("vector", index_type="AUTOINDEX", metric_type="IP")
        index.client.create_index(face, params)
        assert not index.is_current("epoch-1")
        index.reset("epoch-1")
        assert index.client.describe_index(face, "vector")["index_type"] == "HNSW"
    finally:
        index.close()


@pytest.mark.milvus
def test_rebuild_on_the_server_returns_once_the_hnsw_index_is_searched(
    milvus_server_uri: str, milvus_prefix: str
) -> None:
    """Right after a flush the server searches an interim index whatever ef; finish_rebuild waits for the real one."""
    vectors = _vectors(4000)
    index = _rebuilt(MilvusIndex(milvus_server_uri, prefix=milvus_prefix), vectors)
    try:
        face = index._collection("face")
        progress = index.client.describe_index(face, "vector")
        assert (progress["index_type"], progress["indexed_rows"]) == ("HNSW", 4000)
        segments = index.client.list_loaded_segments(face)
        assert sum(s.num_rows for s in segments) == 4000
        assert all(s.index_name for s in segments if s.num_rows >= milvus.MIN_INDEXED_ROWS)
        noisy = vectors[::80] + 0.3 * np.random.default_rng(1).standard_normal((50, milvus.DIM)).astype(np.float32)
        assert _recall_at_10(index, vectors, noisy / np.linalg.norm(noisy, axis=1, keepdims=True)) >= 0.95
        k = milvus.SEARCH_EF + 72
        assert len(index.search("face", 1, [GROUP], vectors[:1], k)[0][GROUP]) == k
    finally:
        for kind in ("face", "person"):
            index.client.drop_collection(index._collection(kind))
        index.client.drop_collection(index.meta)
        index.close()
