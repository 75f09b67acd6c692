"""The upgrade-job domain (facecloud.gallery.versions) without models: the re-embedding function is injected and
returns a fixed rotation of each face's vector, so what lands in the gallery can be checked exactly."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facecloud.errors import ApiError
from facecloud.gallery import FaceInput
from facecloud.gallery.versions import FAILED, REVERTED, UPGRADED, VersionJobs, failed_faces_url
from facecloud.runtime import Runtime
from tests.conftest import fresh_postgres_database
from tests.conftest import test_settings as settings_in

ROTATION = np.linalg.qr(np.random.default_rng(7).standard_normal((128, 128)))[0].astype(np.float32)


def vector_of(crops: tuple[bytes, bytes]) -> np.ndarray:
    """The "2.0" vector a face was enrolled with is carried in its crop bytes, so "3.0" can be computed from it."""
    return np.frombuffer(crops[0], dtype=np.float32)


def embed_crops(crops: list[tuple[bytes, bytes]], version: str) -> list[np.ndarray]:
    return [ROTATION @ vector_of(c) for c in crops]


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)])
def runtime(request, tmp_path: Path) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        rt = Runtime(settings_in(tmp_path))
        yield rt
        rt.close()
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
        rt = Runtime(settings_in(tmp_path, database_url=url))
        yield rt
        rt.close()


def face(rng: np.random.Generator, with_crops: bool = True) -> FaceInput:
    v = rng.standard_normal(128).astype(np.float32)
    v /= np.linalg.norm(v)
    return FaceInput(v, crops=(v.tobytes(), b"resnet") if with_crops else None)


def search_top(runtime: Runtime, account: int, query: np.ndarray) -> tuple[str, float]:
    outcome = runtime.gallery.search(account, ["g"], "face", query[None], 1, by_group=False)
    best = outcome.per_query[0][""][0]
    return best.person_id, best.similarity


def test_batches_new_faces_failed_faces_swap_and_revert(runtime: Runtime) -> None:
    rng = np.random.default_rng(1)
    account = runtime.accounts.find(runtime.accounts.create("a").secret_id).id
    gallery = runtime.gallery
    gallery.create_group(account, "g", "g", [], "", "2.0")
    enrolled = {f"p{i}": face(rng) for i in range(5)}
    for person, f in enrolled.items():
        gallery.create_person(account, "g", person, person, 0, [], f)
    gallery.create_person(account, "g", "old", "old", 0, [], face(rng, with_crops=False))  # enrolled before crops
    jobs = VersionJobs(gallery, embed_crops, ("2.0", "3.0"), batch=2)
    job_id = jobs.start(account, "g", "3.0")
    with pytest.raises(ApiError) as caught:
        jobs.start(account, "g", "3.0")
    assert caught.value.code == "FailedOperation.GroupCannotUpgrade"  # one job at a time

    assert jobs.run_once()  # one batch of 2
    assert 0 < jobs.result(account, job_id).progress < 100
    assert search_top(runtime, account, enrolled["p0"].embedding)[0] == "p0"  # still on 2.0 vectors
    late = face(rng)  # enrolled during the job: the job picks it up
    gallery.create_person(account, "g", "late", "late", 0, [], late)
    while jobs.run_once():
        pass
    info = jobs.result(account, job_id)
    assert info.status == UPGRADED and info.progress == 100 and info.end_ms >= info.start_ms
    assert len(info.failed_face_ids) == 1
    payload = failed_faces_url(info.failed_face_ids).removeprefix("data:application/json;base64,")
    assert json.loads(base64.b64decode(payload))["FaceIds"] == info.failed_face_ids
    assert gallery.get_group(account, "g").face_model_version == "3.0"
    for person, f in {**enrolled, "late": late}.items():
        top, similarity = search_top(runtime, account, ROTATION @ f.embedding)
        assert top == person and similarity > 0.999

    jobs.revert(account, job_id)
    assert gallery.get_group(account, "g").face_model_version == "2.0"
    assert jobs.result(account, job_id).status == REVERTED
    top, similarity = search_top(runtime, account, enrolled["p3"].embedding)
    assert top == "p3" and similarity > 0.999
    with pytest.raises(ApiError) as caught:
        jobs.revert(account, job_id)
    assert caught.value.code == "FailedOperation.JobCannnotRollback"


def test_refusals_and_a_person_copied_away_during_the_job(runtime: Runtime) -> None:
    rng = np.random.default_rng(2)
    account = runtime.accounts.find(runtime.accounts.create("b").secret_id).id
    other = runtime.accounts.find(runtime.accounts.create("c").secret_id).id
    gallery = runtime.gallery
    for group in ("g", "h"):
        gallery.create_group(account, group, group, [], "", "2.0")
    gallery.create_person(account, "g", "p", "p", 0, [], face(rng))
    jobs = VersionJobs(gallery, embed_crops, ("2.0", "3.0"), batch=1)
    for group, version, code in (
        ("g", "2.0", "FailedOperation.GroupCannotUpgrade"),
        ("g", "9.0", "InvalidParameterValue.FaceModelVersionIllegal"),
        ("nope", "3.0", "InvalidParameterValue.GroupIdNotExist"),
    ):
        with pytest.raises(ApiError) as caught:
            jobs.start(account, group, version)
        assert caught.value.code == code
    job_id = jobs.start(account, "g", "3.0")
    with pytest.raises(ApiError) as caught:
        jobs.result(other, job_id)  # another account's job does not exist for it
    assert caught.value.code == "FailedOperation.UpgradeJobIdNotExist"
    gallery.copy_person(account, "p", ["h"])  # now p's vectors are shared with a 2.0 group
    while jobs.run_once():
        pass
    assert jobs.result(account, job_id).status == FAILED
    assert gallery.get_group(account, "g").face_model_version == "2.0"
    with pytest.raises(ApiError) as caught:
        jobs.start(account, "g", "3.0")
    assert caught.value.code == "FailedOperation.GroupCannotUpgrade"
