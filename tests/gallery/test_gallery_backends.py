"""The gallery domain on every storage x index combination: {SQLite, PostgreSQL} x {embedded, Milvus server},
and SQLite x milvus-lite (the single-box Milvus option).

Vectors here are random unit vectors (the domain never sees images); the SDK suite covers the actions on real faces."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, func, select, text

from facecloud.errors import ApiError
from facecloud.gallery import FaceInput, Gallery
from facecloud.gallery.models import FaceRow, MembershipRow, PersonRow
from facecloud.runtime import Runtime
from tests.conftest import REPO, fresh_postgres_database
from tests.conftest import test_settings as settings_in

_SCALE = [pytest.mark.postgres, pytest.mark.milvus]


def _milvus_server(request) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "vector_backend": "milvus",
        "milvus_uri": request.getfixturevalue("milvus_server_uri"),
        "milvus_collection_prefix": request.getfixturevalue("milvus_prefix"),
    }


@pytest.fixture(scope="session")
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh database for this session on the PostgreSQL server, dropped at the end."""
    with fresh_postgres_database(postgres_url) as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param(("sqlite", "embedded"), id="sqlite-embedded"),
        pytest.param(("sqlite", "milvus"), id="sqlite-milvus"),
        pytest.param(("postgres", "embedded"), id="postgres-embedded", marks=pytest.mark.postgres),
        pytest.param(("postgres", "milvus-server"), id="postgres-milvus-server", marks=_SCALE),
        pytest.param(("sqlite", "milvus-server"), id="sqlite-milvus-server", marks=pytest.mark.milvus),
    ]
)
def runtime(request, tmp_path: Path) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    storage, backend = request.param
    overrides: dict[str, object] = {"vector_backend": backend}
    if backend == "milvus-server":
        overrides.update(_milvus_server(request))
    if storage == "postgres":
        url = request.getfixturevalue("postgres_database")
        overrides["database_url"] = url
        _empty_gallery_tables(url)
    rt = Runtime(settings_in(tmp_path, **overrides))
    yield rt
    rt.gallery.close()
    rt.close()


def _empty_gallery_tables(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        exists = conn.scalar(text("SELECT to_regclass('gallery_changes')"))
        if exists:
            conn.execute(
                text(
                    "TRUNCATE gallery_face_thumbnails, gallery_changes, gallery_face_crops, gallery_face_vectors, "
                    "gallery_version_jobs, gallery_faces, gallery_memberships, gallery_persons, gallery_groups, "
                    "gallery_state, gallery_account_counters"
                )
            )
    engine.dispose()


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, 128)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_core_operations_on_every_backend(runtime: Runtime) -> None:
    gallery = runtime.gallery
    a = runtime.accounts.find(runtime.accounts.create("a").secret_id).id
    b = runtime.accounts.find(runtime.accounts.create("b").secret_id).id
    rng = np.random.default_rng(7)
    vectors = unit(rng, 12)
    gallery.create_group(a, "g1", "G1", ["desk"], "", "3.0")
    gallery.create_group(a, "g2", "G2", [], "", "3.0")
    gallery.create_group(b, "g1", "G1", [], "", "3.0")
    for n in range(6):
        gallery.create_person(a, "g1", f"p{n}", f"P{n}", 0, [], FaceInput(vectors[n]))
    gallery.create_person(b, "g1", "p0", "other account", 0, [], FaceInput(vectors[0]))
    gallery.add_faces(a, "p1", [FaceInput(vectors[6]), FaceInput(vectors[7])])
    assert gallery.copy_person(a, "p1", ["g2"]) == ["g2"]

    hit = gallery.search(a, ["g1", "g2"], "face", vectors[7], 3, by_group=False)
    top = hit.per_query[0][""][0]
    assert (top.person_id, round(top.similarity, 4)) == ("p1", 1.0) and hit.total == 8 + 3
    grouped = gallery.search(a, ["g1", "g2"], "person", vectors[3:5], 2, by_group=True)
    assert grouped.per_query[0]["g1"][0].person_id == "p3" and grouped.per_query[1]["g1"][0].person_id == "p4"
    assert [c.person_id for c in grouped.per_query[0]["g2"]] == ["p1"]

    # Deletes take effect at once.
    gallery.delete_faces(a, "p1", [gallery.get_person(a, "p1").face_ids[2]])
    after = gallery.search(a, ["g1", "g2"], "face", vectors[7], 1, by_group=False).per_query[0][""][0]
    assert round(after.similarity, 4) < 1.0
    gallery.delete_person(a, "p3")
    assert all(c.person_id != "p3" for c in gallery.search(a, ["g1"], "face", vectors[3], 5, False).per_query[0][""])
    gallery.delete_group(a, "g1")
    assert gallery.get_person(a, "p1").person_id == "p1"  # still in g2
    with pytest.raises(ApiError) as error:
        gallery.get_person(a, "p2")
    assert error.value.code == "InvalidParameterValue.PersonIdNotExist"
    # The other account's same ids are untouched and invisible.
    assert gallery.search(b, ["g1"], "face", vectors[0], 5, False).per_query[0][""][0].person_id == "p0"
    with pytest.raises(ApiError):
        gallery.search(b, ["g2"], "face", vectors[1], 5, False)

    # A new process (new Gallery) sees the same content.
    gallery.close()
    reopened = Gallery(runtime.db, runtime.settings)
    assert reopened.search(a, ["g2"], "face", vectors[6], 1, False).per_query[0][""][0].person_id == "p1"
    reopened.close()


def test_embedded_index_is_rebuilt_when_lost_or_stale(tmp_path: Path) -> None:
    runtime = Runtime(settings_in(tmp_path))
    account = runtime.accounts.find(runtime.accounts.create("a").secret_id).id
    vectors = unit(np.random.default_rng(1), 3)
    gallery = runtime.gallery
    gallery.create_group(account, "g", "G", [], "", "3.0")
    gallery.create_person(account, "g", "p", "P", 0, [], FaceInput(vectors[0]))
    gallery.close()  # saved
    other = Gallery(runtime.db, runtime.settings)  # loads the snapshot
    other.add_faces(account, "p", [FaceInput(vectors[1])])  # the first Gallery's snapshot is now stale
    assert Gallery(runtime.db, runtime.settings).index.count("face", [1]) == 2  # caught up from the log
    import shutil

    shutil.rmtree(tmp_path / "gallery-index")
    assert Gallery(runtime.db, runtime.settings).index.count("face", [1]) == 2  # rebuilt from the database
    runtime.close()


ENROL_FOREVER = """
import sys, numpy as np
from pathlib import Path
from facecloud.config import Settings
from facecloud.gallery import FaceInput
from facecloud.runtime import Runtime
rt = Runtime(Settings(data_dir=Path(sys.argv[1])))
account = rt.accounts.create("a")
account_id = rt.accounts.find(account.secret_id).id
gallery = rt.gallery
gallery.create_group(account_id, "g", "G", [], "", "3.0")
gallery.create_group(account_id, "h", "H", [], "", "3.0")
rng = np.random.default_rng(0)
for n in range(100000):
    v = rng.standard_normal((3, 128)).astype(np.float32)
    gallery.create_person(account_id, "g", f"p{n}", "P", 0, [], FaceInput(v[0]))
    gallery.add_faces(account_id, f"p{n}", [FaceInput(v[1]), FaceInput(v[2])])
    gallery.copy_person(account_id, f"p{n}", ["h"])
    if n % 7 == 3:
        gallery.delete_person(account_id, f"p{n - 1}")
    print(n, flush=True)
"""


def test_sigkill_during_enrolment_leaves_a_consistent_gallery(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", ENROL_FOREVER, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    deadline = time.time() + 60
    assert process.stdout is not None
    for line in process.stdout:
        if int(line) >= 40 or time.time() > deadline:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()

    runtime = Runtime(settings_in(tmp_path))
    gallery = runtime.gallery  # restart: loads/catches up or rebuilds
    with runtime.db.session() as session:
        persons = session.scalar(select(func.count()).select_from(PersonRow))
        faceless = session.scalar(
            select(func.count())
            .select_from(PersonRow)
            .where(~select(FaceRow.id).where(FaceRow.person_pk == PersonRow.id).exists())
        )
        groupless = session.scalar(
            select(func.count())
            .select_from(PersonRow)
            .where(~select(MembershipRow.group_pk).where(MembershipRow.person_pk == PersonRow.id).exists())
        )
        entries = session.scalar(
            select(func.count()).select_from(FaceRow).join(MembershipRow, MembershipRow.person_pk == FaceRow.person_pk)
        )
        face_rows = session.execute(select(FaceRow.id, FaceRow.embedding)).all()
    assert persons > 10 and faceless == 0 and groupless == 0
    assert gallery.index.count("face", [1, 2]) == entries  # no orphan vector, no row without its vector
    for face_pk, blob in face_rows[-5:]:
        vector = np.frombuffer(blob, dtype=np.float32)
        hit = gallery.index.search("face", 1, [1], vector[None], 1)[0][1][0]
        assert hit.item_pk == face_pk
    gallery.close()
    runtime.close()


@pytest.mark.postgres
@pytest.mark.milvus
def test_sdk_enrol_search_delete_on_postgres_and_milvus(
    postgres_database: str, milvus_server_uri: str, milvus_prefix: str, tmp_path: Path
) -> None:
    """The core SDK path on the scale configuration (PostgreSQL rows, a Milvus server's vectors)."""
    from tests.conftest import _serve
    from tests.gallery.test_gallery_actions import call, error_of, photo

    _empty_gallery_tables(postgres_database)
    runtime = Runtime(
        settings_in(
            tmp_path,
            database_url=postgres_database,
            vector_backend="milvus",
            milvus_uri=milvus_server_uri,
            milvus_collection_prefix=milvus_prefix,
        )
    )
    serving = _serve(runtime)
    server = next(serving)
    try:
        client = server.client(server.new_account())
        call(client, "CreateGroup", {"GroupId": "g", "GroupName": "G"})
        for person in ("Colin_Powell", "Tony_Blair"):
            call(
                client,
                "CreatePerson",
                {"GroupId": "g", "PersonId": person, "PersonName": person, "Image": photo(person, 1)},
            )
        call(client, "CreateFace", {"PersonId": "Tony_Blair", "Images": [photo("Tony_Blair", 2)]})
        found = call(client, "SearchPersons", {"GroupIds": ["g"], "Image": photo("Tony_Blair", 3)})
        assert found["Results"][0]["Candidates"][0]["PersonId"] == "Tony_Blair" and found["PersonNum"] == 2
        call(client, "DeletePerson", {"PersonId": "Tony_Blair"})
        after = call(client, "SearchFaces", {"GroupIds": ["g"], "Image": photo("Tony_Blair", 4)})
        assert [c["PersonId"] for c in after["Results"][0]["Candidates"]] == ["Colin_Powell"]
        assert (
            error_of(client, "VerifyFace", {"PersonId": "Tony_Blair", "Image": photo("Tony_Blair", 4)})
            == "InvalidParameterValue.PersonIdNotExist"
        )
    finally:
        runtime.gallery.close()
        with contextlib.suppress(StopIteration):
            next(serving)
