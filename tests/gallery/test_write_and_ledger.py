"""A committed gallery write and its ledger row go together (issue 13 item 5): the row is written in the write's own
transaction, so a process killed with SIGKILL at the worst moment (right after the commit, or right before it) leaves
both or neither; a write the deadline abandoned leaves neither; and the client's retry after a lost answer is told
PersonIdAlreadyExist (free), which lets it continue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from facecloud.billing.models import UsageEntry
from facecloud.errors import ApiError
from facecloud.gallery.models import FaceRow, PersonRow
from facecloud.gateway.params import validate
from facecloud.gateway.registry import ActionContext, CallAbandoned, execute, registry
from facecloud.runtime import Runtime
from tests.conftest import fresh_postgres_database
from tests.conftest import test_settings as settings_in
from tests.gallery.test_gallery_actions import photo

REPO = Path(__file__).resolve().parents[2]

# Runs CreatePerson through the gateway's execute() and SIGKILLs itself when the gallery write's transaction reaches
# `moment` (a SQLAlchemy session event: before_commit, after the ledger and change-log rows are written; or
# after_commit, once the database committed, where a second transaction for the ledger would not have run yet).
KILL_AT = r"""
import faulthandler, os, signal, sys
from pathlib import Path
from sqlalchemy import event
from sqlalchemy.orm import Session
from facecloud.gateway.params import validate
from facecloud.gateway.registry import ActionContext, execute, registry
from facecloud.runtime import Runtime
from tests.conftest import test_settings
from tests.gallery.test_gallery_actions import photo

faulthandler.dump_traceback_later(150, exit=True)  # a hang shows where it stopped instead of a bare timeout
data_dir, database_url, moment, account_id = sys.argv[1:5]
runtime = Runtime(test_settings(Path(data_dir), database_url=database_url), migrate=False)
action = registry()["CreatePerson"]
request = validate(
    action.request, {"GroupId": "g", "PersonId": "p", "PersonName": "P", "Image": photo("Colin_Powell", 1)}
)
ctx = ActionContext(int(account_id), 0, "request-1", "zh-CN", runtime)


def die(session):
    if "gallery_log" in session.info:  # the gallery's write transaction
        os.kill(os.getpid(), signal.SIGKILL)


event.listen(Session, moment, die)
execute(action, request, ctx)
print("not killed", flush=True)
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "postgres":
        with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
            yield url
        return
    yield ""


def _setup(tmp_path: Path, database_url: str) -> int:
    """A fresh installation with one account and its group "g"; returns the account id."""
    runtime = Runtime(settings_in(tmp_path, database_url=database_url))
    account = runtime.accounts.find(runtime.accounts.create("a").secret_id)
    runtime.gallery.create_group(account.id, "g", "G", [], "", "3.0")
    runtime.close()
    return account.id


def _persons_and_ledger(runtime: Runtime, account_id: int) -> tuple[int, int, int]:
    """(persons, faces, ledger rows) of the account."""
    with runtime.db.session() as session:
        persons = session.scalar(select(func.count()).select_from(PersonRow).where(PersonRow.account_id == account_id))
        faces = session.scalar(
            select(func.count()).select_from(FaceRow).join(PersonRow).where(PersonRow.account_id == account_id)
        )
        ledger = session.scalar(select(func.count()).select_from(UsageEntry).where(UsageEntry.account_id == account_id))
    return persons or 0, faces or 0, ledger or 0


def _create_person(runtime: Runtime, account_id: int, request_id: str, **kwargs: object) -> dict:
    action = registry()["CreatePerson"]
    request = validate(
        action.request, {"GroupId": "g", "PersonId": "p", "PersonName": "P", "Image": photo("Colin_Powell", 1)}
    )
    return execute(action, request, ActionContext(account_id, 0, request_id, "zh-CN", runtime), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("moment", "stored"), [("after_commit", True), ("before_commit", False)])
def test_sigkill_at_the_commit_leaves_the_write_and_its_ledger_row_together(
    tmp_path: Path, database_url: str, moment: str, stored: bool
) -> None:
    account_id = _setup(tmp_path, database_url)
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT, str(tmp_path), database_url, moment, str(account_id)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-8000:]

    runtime = Runtime(settings_in(tmp_path, database_url=database_url))  # the restarted node
    try:
        assert _persons_and_ledger(runtime, account_id) == ((1, 1, 1) if stored else (0, 0, 0))
        # The client saw no answer and retries (a new RequestId: the server makes one per request).
        if stored:
            with pytest.raises(ApiError) as error:
                _create_person(runtime, account_id, "request-2")
            assert error.value.code == "InvalidParameterValue.PersonIdAlreadyExist"  # free: a failure
            assert runtime.gallery.get_person(account_id, "p").name == "P"  # the client can go on from here
        else:
            _create_person(runtime, account_id, "request-2")
        assert _persons_and_ledger(runtime, account_id) == (1, 1, 1)
    finally:
        runtime.close()


def test_the_ledger_row_commits_with_the_write_not_after_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account_id = _setup(tmp_path, "")
    runtime = Runtime(settings_in(tmp_path))
    try:
        # The separate recording step after the handler is where a crash used to lose the ledger row; it is not used.
        monkeypatch.setattr(runtime.billing, "record_call", lambda *a, **k: pytest.fail("recorded after the write"))
        assert _create_person(runtime, account_id, "request-1")["FaceId"]
        assert _persons_and_ledger(runtime, account_id) == (1, 1, 1)
        with runtime.db.session() as session:
            assert session.scalar(select(UsageEntry.action)) == "CreatePerson"
    finally:
        runtime.close()


def test_a_write_whose_deadline_passed_is_neither_stored_nor_billed(tmp_path: Path) -> None:
    account_id = _setup(tmp_path, "")
    runtime = Runtime(settings_in(tmp_path))
    try:
        with pytest.raises(CallAbandoned):
            _create_person(runtime, account_id, "request-1", may_commit=lambda: False)
        assert _persons_and_ledger(runtime, account_id) == (0, 0, 0)
        _create_person(runtime, account_id, "request-2")  # the retry succeeds and is billed once
        assert _persons_and_ledger(runtime, account_id) == (1, 1, 1)
    finally:
        runtime.close()
