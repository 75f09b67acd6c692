"""The gallery at scale: writes serialise per account (not per installation) while the change log keeps commit
order, the account face counter, change-log compaction, index training off the request path, the commit gate
(a timed-out write leaves nothing behind) and the installation-wide job lock."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, func, select, text

from facecloud.db import Database, WriteAbandoned, commit_gate
from facecloud.errors import ApiError
from facecloud.gallery import FaceInput, Gallery
from facecloud.gallery import writes as gallery_service
from facecloud.gallery.index import embedded
from facecloud.gallery.models import AccountCounterRow, ChangeRow, FaceRow, PersonRow
from facecloud.runtime import Runtime
from tests.conftest import fresh_postgres_database
from tests.conftest import test_settings as settings_in
from tests.gallery.test_gallery_backends import unit


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def runtime(request, tmp_path: Path) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    if request.param == "postgres":
        with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
            rt = Runtime(settings_in(tmp_path, database_url=url))
            yield rt
            rt.close()
        return
    rt = Runtime(settings_in(tmp_path))
    yield rt
    rt.close()


def _account(runtime: Runtime, name: str) -> int:
    return runtime.accounts.find(runtime.accounts.create(name).secret_id).id


def _counted_faces(runtime: Runtime, account_id: int) -> tuple[int, int]:
    """(the counter, the rows)."""
    with runtime.db.session() as s:
        counter = s.get(AccountCounterRow, account_id)
        rows = s.scalar(
            select(func.count(FaceRow.id))
            .join(PersonRow, PersonRow.id == FaceRow.person_pk)
            .where(PersonRow.account_id == account_id)
        )
    return (counter.faces if counter else 0), int(rows or 0)


def test_concurrent_writes_of_many_accounts_keep_rows_and_index_consistent(runtime: Runtime) -> None:
    gallery = runtime.gallery
    accounts = [_account(runtime, f"a{n}") for n in range(4)]
    vectors = unit(np.random.default_rng(3), 4 * 30 * 2)
    for account in accounts:
        gallery.create_group(account, "g", "G", [], "", "3.0")

    def enrol(number: int) -> None:
        account = accounts[number]
        for n in range(30):
            base = (number * 30 + n) * 2
            gallery.create_person(account, "g", f"p{n}", "P", 0, [], FaceInput(vectors[base]))
            gallery.add_faces(account, f"p{n}", [FaceInput(vectors[base + 1])])
            if n % 5 == 4:
                gallery.delete_person(account, f"p{n - 1}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(enrol, range(4)))
    assert gallery.index_report()["consistent"]
    for number, account in enumerate(accounts):
        hit = gallery.search(account, ["g"], "face", vectors[(number * 30 + 29) * 2 + 1], 1, False).per_query[0][""]
        assert hit[0].person_id == "p29"
        assert _counted_faces(runtime, account) == (48, 48)  # 30 persons x 2 faces, 6 deleted
    with runtime.db.session() as s:  # the change log in commit order: seq strictly increasing, no gap in use
        seqs = list(s.scalars(select(ChangeRow.seq).order_by(ChangeRow.seq)))
    assert len(seqs) == len(set(seqs))
    fresh = Gallery(runtime.db, runtime.settings)  # another process replaying the log from scratch
    assert fresh.index_report()["consistent"]
    fresh.close()


@pytest.mark.postgres
def test_a_write_waits_only_for_its_own_account(postgres_url: str, tmp_path: Path) -> None:
    with fresh_postgres_database(postgres_url) as url:
        runtime = Runtime(settings_in(tmp_path, database_url=url))
        gallery = runtime.gallery
        busy, free = _account(runtime, "busy"), _account(runtime, "free")
        vectors = unit(np.random.default_rng(4), 2)
        for account in (busy, free):
            gallery.create_group(account, "g", "G", [], "", "3.0")
        holder = create_engine(url)
        try:
            with holder.connect() as conn:  # another node in the middle of a long write of account `busy`
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:ns, :account)"),
                    {"ns": gallery_service.ACCOUNT_LOCK, "account": busy},
                )
                blocked = threading.Thread(
                    target=gallery.create_person, args=(busy, "g", "p", "P", 0, [], FaceInput(vectors[0]))
                )
                blocked.start()
                started = time.perf_counter()
                gallery.create_person(free, "g", "p", "P", 0, [], FaceInput(vectors[1]))
                assert time.perf_counter() - started < 5
                time.sleep(0.5)
                assert blocked.is_alive()  # still queued behind its own account's lock
                conn.rollback()
            blocked.join(timeout=30)
            assert not blocked.is_alive()
            assert gallery.get_person(busy, "p").person_id == "p"
        finally:
            holder.dispose()
            runtime.close()


def test_the_account_face_counter_follows_every_add_and_delete(runtime: Runtime) -> None:
    gallery = runtime.gallery
    account = _account(runtime, "a")
    vectors = unit(np.random.default_rng(5), 12)
    gallery.create_group(account, "g", "G", [], "", "3.0")
    gallery.create_group(account, "h", "H", [], "", "3.0")
    for n in range(4):
        gallery.create_person(account, "g", f"p{n}", "P", 0, [], FaceInput(vectors[n]))
    gallery.add_faces(account, "p0", [FaceInput(vectors[4]), FaceInput(vectors[5])])
    gallery.copy_person(account, "p1", ["h"])  # in two groups: still one face
    assert _counted_faces(runtime, account) == (6, 6)
    gallery.delete_faces(account, "p0", [gallery.get_person(account, "p0").face_ids[0]])
    gallery.delete_person(account, "p2")
    gallery.delete_person_from_group(account, "p3", "g")  # its last group: the person goes
    assert _counted_faces(runtime, account) == (3, 3)
    gallery.delete_group(account, "g")  # p0 goes with it; p1 stays in h
    assert _counted_faces(runtime, account) == (1, 1)


def test_compaction_bounds_the_change_log_and_a_stale_index_rebuilds(runtime: Runtime) -> None:
    gallery = runtime.gallery
    account = _account(runtime, "a")
    vectors = unit(np.random.default_rng(6), 30)
    gallery.create_group(account, "g", "G", [], "", "3.0")
    for n in range(10):
        gallery.create_person(account, "g", f"p{n}", "P", 0, [], FaceInput(vectors[n]))
    gallery.close()  # saved at this point of the log
    live = Gallery(runtime.db, runtime.settings)
    for n in range(10, 20):
        live.create_person(account, "g", f"p{n}", "P", 0, [], FaceInput(vectors[n]))
    with runtime.db.session() as s:
        before = s.scalar(select(func.count()).select_from(ChangeRow))
    assert live.compact_log(keep=4) == before - 4
    assert live.compact_log(keep=4) == 0
    with runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ChangeRow)) == 4
    live.create_person(account, "g", "p20", "P", 0, [], FaceInput(vectors[20]))
    live.close()
    stale = Gallery(runtime.db, runtime.settings)  # its snapshot is behind the compaction point: rebuilt
    assert stale.index_report()["consistent"] and stale.index.count("face", [1]) == 21
    assert stale.search(account, ["g"], "face", vectors[5], 1, False).per_query[0][""][0].person_id == "p5"
    stale.close()


def test_training_runs_in_maintenance_not_in_the_write(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "ANN_THRESHOLD", 60)
    gallery = runtime.gallery
    if not isinstance(gallery.index, embedded.EmbeddedIndex):
        pytest.skip("embedded index only")
    account = _account(runtime, "a")
    vectors = unit(np.random.default_rng(7), 120)
    gallery.create_group(account, "g", "G", [], "", "3.0")
    for n in range(80):
        gallery.create_person(account, "g", f"p{n}", "P", 0, [], FaceInput(vectors[n]))
    group = gallery.index._groups[("face", 1)]
    assert group.needs_training and not group.is_ivf  # the writes did not train

    real = embedded.trained_ivf

    def writes_during_training(items, vectors_, seed):  # type: ignore[no-untyped-def]
        trained = real(items, vectors_, seed)
        if not writes:  # (the face and the person index both train: write during the first)
            # Writes that land while the training runs (off the group's lock) must reach the new index.
            writes.append(gallery.create_person(account, "g", "late", "P", 0, [], FaceInput(vectors[100])))
            gallery.delete_person(account, "p3")
        return trained

    writes: list[tuple[str, str]] = []

    monkeypatch.setattr(embedded, "trained_ivf", writes_during_training)
    assert gallery.maintain()["trained_groups"] >= 1
    assert group.is_ivf and gallery.index_report()["consistent"]
    found = gallery.search(account, ["g"], "face", vectors[100:101], 1, False).per_query[0][""][0]
    assert found.person_id == "late"
    assert all(
        c.person_id != "p3" for c in gallery.search(account, ["g"], "face", vectors[3], 5, False).per_query[0][""]
    )


def test_a_write_the_deadline_abandoned_is_rolled_back_and_a_retry_succeeds(runtime: Runtime) -> None:
    gallery = runtime.gallery
    account = _account(runtime, "a")
    vector = unit(np.random.default_rng(8), 1)[0]
    gallery.create_group(account, "g", "G", [], "", "3.0")
    token = commit_gate.set(lambda: False)  # the gateway's deadline passed before the commit
    try:
        with pytest.raises(WriteAbandoned):
            gallery.create_person(account, "g", "p", "P", 0, [], FaceInput(vector))
    finally:
        commit_gate.reset(token)
    with pytest.raises(ApiError) as error:
        gallery.get_person(account, "p")
    assert error.value.code == "InvalidParameterValue.PersonIdNotExist"
    assert _counted_faces(runtime, account) == (0, 0)
    assert gallery.create_person(account, "g", "p", "P", 0, [], FaceInput(vector))[0] == "p"  # the retry


def test_an_installation_job_runs_in_one_process_at_a_time(runtime: Runtime) -> None:
    other = Runtime(runtime.settings, migrate=False)  # another node on the same database
    try:
        with runtime.db.exclusive("job") as first:
            with other.db.exclusive("job") as second:
                assert first and not second
            with other.db.exclusive("another job") as unrelated:
                assert unrelated
        with other.db.exclusive("job") as after:
            assert after
    finally:
        other.db.dispose()


def _migrate_together(url: str, start, results) -> None:  # type: ignore[no-untyped-def]
    start.wait(timeout=60)
    try:
        Database(url).migrate()
        results.put("migrated")
    except Exception as error:
        results.put(repr(error))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_processes_migrate_a_fresh_database_at_once(request, tmp_path: Path, backend: str) -> None:  # type: ignore[no-untyped-def]
    """A node and the CLI, or two nodes of a cluster, starting on a fresh database: both find it migrated."""
    with ExitStack() as stack:
        url = (
            stack.enter_context(fresh_postgres_database(request.getfixturevalue("postgres_url")))
            if backend == "postgres"
            else f"sqlite:///{tmp_path / 'fresh.db'}"
        )
        context = multiprocessing.get_context("fork")
        start, results = context.Barrier(2), context.Queue()
        processes = [context.Process(target=_migrate_together, args=(url, start, results)) for _ in range(2)]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(timeout=30)
        assert outcomes == ["migrated", "migrated"]


def test_the_gateway_rolls_back_a_write_whose_deadline_passed(runtime: Runtime) -> None:
    from facecloud.gateway.params import validate
    from facecloud.gateway.registry import ActionContext, CallAbandoned, execute, registry

    creds = runtime.accounts.create("a")
    account = runtime.accounts.find(creds.secret_id)
    action = registry()["CreateGroup"]
    request = validate(action.request, {"GroupId": "g", "GroupName": "G"})
    ctx = ActionContext(account.id, account.app_id, "request-1", "zh-CN", runtime)
    with pytest.raises(CallAbandoned):
        execute(action, request, ctx, may_commit=lambda: False)  # the client was told RequestTimeout
    assert runtime.gallery.list_groups(account.id, 0, 10)[1] == 0
    execute(action, request, ctx)  # the client's retry
    assert runtime.gallery.get_group(account.id, "g").name == "G"
