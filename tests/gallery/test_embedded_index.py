"""The embedded index's large-group layout (IvfRefine: IVF + fast-scan PQ candidates re-ranked against fp16 copies):
upserts and removals by item, search against exact, entries, save/load, and a rebuild that stages a large group and
builds it once."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from facecloud.gallery import FaceInput, Gallery
from facecloud.gallery.index import embedded
from facecloud.gallery.index.embedded import EmbeddedIndex
from facecloud.gallery.index.layouts import IvfRefine, SlotMap
from facecloud.runtime import Runtime
from tests.conftest import test_settings as settings_in
from tests.gallery.test_gallery_backends import unit


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return unit(np.random.default_rng(3), 6000)


def _top(index: IvfRefine, query: np.ndarray, k: int = 1) -> list[int]:
    return index.search(query[None], k)[1][0].tolist()


def test_search_finds_each_vector_and_ranks_exactly(vectors: np.ndarray) -> None:
    items = np.arange(1000, 1000 + len(vectors), dtype=np.int64)
    index = IvfRefine.build(items, vectors, seed=1)
    index.candidates.nprobe, index.shortlist = index.nlist, len(vectors)  # every entry re-ranked: exact search
    similarities, found = index.search(vectors[:20], 5)
    assert (found[:, 0] == items[:20]).all()
    exact = vectors[:20] @ vectors.T
    expected = np.sort(exact, axis=1)[:, ::-1][:, :5]
    assert np.allclose(similarities, expected, atol=2e-3)  # fp16 copies
    assert index.size == len(vectors) and index.memory_bytes() > len(vectors) * 256


def test_upsert_remove_and_reuse_of_slots(vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SlotMap, "MERGE_AT", 16)  # the sorted arrays and the recent dict both take part
    items = np.arange(len(vectors) - 100, dtype=np.int64)
    index = IvfRefine.build(items, vectors[:-100], seed=2)
    index.candidates.nprobe = index.nlist
    index.remove(items[:50])
    assert index.size == len(items) - 50 and _top(index, vectors[0]) != [0]
    index.remove(np.array([10**9]))  # unknown: nothing happens
    index.put(np.array([0, 70]), vectors[[-1, -2]])  # 0 comes back, 70 moves to another vector (new slots)
    assert index.size == len(items) - 49
    assert _top(index, vectors[-1]) == [0] and _top(index, vectors[-2]) == [70]
    new = np.arange(10**6, 10**6 + 60, dtype=np.int64)
    index.put(new, vectors[-100:-40])
    index.remove(new[:30])
    assert all(_top(index, vectors[-100 + n]) == [int(new[n])] for n in range(30, 60))
    got_items, got_vectors = index.entries()
    assert len(got_items) == len(set(got_items.tolist())) == index.size
    assert index.dead == 50 + 1 + 30  # removed, replaced (70), removed again: skipped until the next training
    assert np.allclose(got_vectors[got_items == 70][0], vectors[-2], atol=1e-3)


def test_saved_and_loaded_index_answers_the_same(tmp_path: Path, vectors: np.ndarray) -> None:
    items = np.arange(len(vectors), dtype=np.int64)
    index = IvfRefine.build(items, vectors, seed=4)
    index.remove(np.concatenate([items[:10], items[-5:]]))  # the last slots too: still taken after a load
    index.write(tmp_path / "group")
    loaded = IvfRefine.read(tmp_path / "group")
    assert loaded.size == index.size and loaded.dead == index.dead == 15 and loaded.high == len(vectors)
    assert (loaded.search(vectors[10:40], 10)[1] == index.search(vectors[10:40], 10)[1]).all()
    loaded.put(np.array([10**6]), vectors[-1:])  # a new slot, not one whose stale code is still a candidate
    found = loaded.search(vectors[-1:], 10)[1][0]
    assert found[0] == 10**6 and len(set(found.tolist())) == 10


def _group_of_persons(tmp_path: Path, vectors: np.ndarray, count: int) -> tuple[Runtime, int]:
    """A runtime whose one account has group "g" of `count` persons p0.. with one face each (vectors[n])."""
    runtime = Runtime(settings_in(tmp_path))
    account = runtime.accounts.find(runtime.accounts.create("a").secret_id).id
    runtime.gallery.create_group(account, "g", "G", [], "", "3.0")
    for n in range(count):
        runtime.gallery.create_person(account, "g", f"p{n}", "P", 0, [], FaceInput(vectors[n]))
    return runtime, account


def test_rebuild_stages_a_large_group_and_serves_it_after_a_restart(
    tmp_path: Path, vectors: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "ANN_THRESHOLD", 1000)
    runtime, account = _group_of_persons(tmp_path, vectors, 1200)
    gallery = runtime.gallery
    assert gallery.rebuild() == 1200
    group = gallery.index._groups[("face", 1)]
    assert group.is_ivf and group.trained_n == 1200 and gallery.index_report()["consistent"]
    gallery.close()
    restarted = Gallery(runtime.db, runtime.settings)
    assert isinstance(restarted.index, EmbeddedIndex) and restarted.index._groups[("face", 1)].is_ivf
    found = restarted.search(account, ["g"], "face", vectors[5], 1, False).per_query[0][""][0]
    assert found.person_id == "p5"
    restarted.close()
    runtime.close()


def test_a_saved_index_of_the_former_layout_is_rebuilt(tmp_path: Path, vectors: np.ndarray) -> None:
    runtime, account = _group_of_persons(tmp_path, vectors, 3)
    gallery = runtime.gallery
    gallery.close()
    former = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(128), 128, 1, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )
    former.train(vectors[:100])
    former.add_with_ids(vectors[:3], np.arange(1, 4, dtype=np.int64))
    manifest = json.loads((tmp_path / "gallery-index" / "manifest.json").read_text())
    face_entry = next(entry for entry in manifest["groups"] if entry["kind"] == "face")
    face_entry.pop("layout")  # as the former index wrote it
    faiss.write_index(former, str(tmp_path / "gallery-index" / face_entry["file"]))
    (tmp_path / "gallery-index" / "manifest.json").write_text(json.dumps(manifest))
    assert not EmbeddedIndex(tmp_path / "gallery-index").is_current(manifest["epoch"])
    reopened = Gallery(runtime.db, runtime.settings)  # rebuilt from the database
    assert isinstance(reopened.index._groups[("face", 1)].index, embedded.ExactIndex)
    assert reopened.index_report()["consistent"]
    reopened.close()
    runtime.close()
