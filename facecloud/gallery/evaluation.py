"""Rank-1 identification on LFW through the real gallery (database + vector index + search).

Protocol: every person with >= 2 photos is enrolled with their first photo (sorted file names) and each of their other
photos is a probe; every person with one photo is enrolled too, as a distractor. A probe is correct when the top
SearchFaces candidate is its person. Embeddings come from facecloud's vision pipeline."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from facecloud.config import Settings
from facecloud.gallery.records import FaceInput
from facecloud.runtime import Runtime


def rank1_identification(embeddings: np.ndarray, labels: np.ndarray, backend: str = "embedded") -> dict:
    counts = Counter(labels.tolist())
    first_row: dict[int, int] = {}
    for row, label in enumerate(labels.tolist()):
        first_row.setdefault(label, row)
    probes = [row for row, label in enumerate(labels.tolist()) if first_row[label] != row]
    with tempfile.TemporaryDirectory(prefix="facecloud-eval-") as folder:
        runtime = Runtime(Settings(data_dir=Path(folder), vector_backend=backend))
        account_id = runtime.accounts.find(runtime.accounts.create("eval").secret_id).id
        gallery = runtime.gallery
        gallery.create_group(account_id, "lfw", "lfw", [], "", "3.0")
        started = time.perf_counter()
        for label, row in first_row.items():
            gallery.create_person(account_id, "lfw", f"id{label}", "p", 0, [], FaceInput(embeddings[row]))
        enrol_s = time.perf_counter() - started
        started = time.perf_counter()
        correct = 0
        for start in range(0, len(probes), 64):
            rows = probes[start : start + 64]
            outcome = gallery.search(account_id, ["lfw"], "face", embeddings[rows], 1, by_group=False)
            for row, per_query in zip(rows, outcome.per_query, strict=True):
                best = per_query[""]
                correct += bool(best) and best[0].person_id == f"id{labels[row]}"
        search_s = time.perf_counter() - started
        gallery.close()
        runtime.close()
    return {
        "rank1": round(correct / len(probes), 4),
        "probes": len(probes),
        "gallery_persons": len(first_row),
        "identities_with_probes": sum(1 for c in counts.values() if c >= 2),
        "distractors": sum(1 for c in counts.values() if c == 1),
        "enrol_s": round(enrol_s, 1),
        "search_ms_per_probe": round(search_s / max(1, len(probes)) * 1000, 2),
        "backend": backend,
    }
