"""Faults: SIGKILL of the server while billable calls are in flight and of a settlement run, a full disk,
and the database locked by another process. After a restart nothing acknowledged is lost and nothing that was
answered with a free outcome is billed.

The ledger is written before the answer is sent (billing rules), so a call in flight at the very moment of a
kill may be billed although its answer never left: such rows are bounded by the calls that got no answer."""

from __future__ import annotations

import base64
import io
import json
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from facecloud.accounts import Credentials
from facecloud.config import Settings
from facecloud.runtime import Runtime
from tests.conftest import REPO, free_port
from tests.hardening.support import call
from tests.serving import ServerProcess, server_env

pytestmark = pytest.mark.slow


def _blank_jpeg() -> str:
    """A grey picture without a face: DetectFace answers NoFaceInPhoto, which is billable, after real work."""
    out = io.BytesIO()
    Image.fromarray(np.full((160, 160, 3), 120, np.uint8)).save(out, "JPEG")
    return base64.b64encode(out.getvalue()).decode()


BLANK = _blank_jpeg()


@pytest.fixture
def make_server(tmp_path) -> Iterator:  # type: ignore[type-arg]
    servers: list[ServerProcess] = []

    def make(data_dir: Path | None = None, **settings: str) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path / "data", free_port(), server_env(**settings))
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@dataclass
class Traffic:
    """Billable calls from several threads; what each got back."""

    acknowledged_billable: set[str] = field(default_factory=set)
    acknowledged_free: set[str] = field(default_factory=set)
    unanswered: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, url: str, creds: Credentials, n: int, stop: threading.Event) -> None:
        with httpx.Client() as http:
            for i in range(n):
                if stop.is_set():
                    return
                body = json.dumps({"Image": BLANK, "MaxFaceNum": 1 + i % 5}).encode()
                try:
                    response = _post(http, url, creds, body)
                except (httpx.HTTPError, ValueError):
                    with self.lock:
                        self.unanswered += 1
                    continue
                code = response.get("Error", {}).get("Code", "Success")
                with self.lock:
                    self.codes[code] = self.codes.get(code, 0) + 1
                    billable = code in ("Success", "InvalidParameterValue.NoFaceInPhoto")
                    (self.acknowledged_billable if billable else self.acknowledged_free).add(response["RequestId"])


def _traffic_running(seconds: float, answered: Callable[[], bool], at_most_s: float = 60.0) -> None:
    """Let the traffic run `seconds`, and on until a first call was answered (a slow machine takes longer)."""
    time.sleep(seconds)
    deadline = time.monotonic() + at_most_s
    while not answered() and time.monotonic() < deadline:
        time.sleep(0.1)


def _post(http: httpx.Client, url: str, creds: Credentials, body: bytes) -> dict:
    from tests.hardening.support import signed_post

    return signed_post(url, creds, "DetectFace", body, client=http, timeout=60).json()["Response"]


def _ledger(server: ServerProcess) -> set[str]:
    from sqlalchemy import text

    runtime = server.runtime()
    try:
        with runtime.db.session() as s:
            return set(s.execute(text("select request_id from billing_usage_entries")).scalars())
    finally:
        runtime.close()


def _counters_match_ledger(server: ServerProcess) -> None:
    """The monthly counters are sums of the ledger: a kill must not leave one without the other."""
    from sqlalchemy import text

    runtime = server.runtime()
    try:
        with runtime.db.session() as s:
            entries = dict(
                s.execute(
                    text("select account_id || ':' || service, count(*) from billing_usage_entries group by 1")
                ).all()
            )
            months = dict(
                s.execute(
                    text("select account_id || ':' || service, sum(calls) from billing_usage_monthly group by 1")
                ).all()
            )
    finally:
        runtime.close()
    assert entries == months


def test_sigkill_during_billable_calls(make_server):
    server = make_server().start()
    creds = server.account("kill")
    warm_up = call(server.url, creds, "DetectFace", {"Image": BLANK})  # loads the models before the traffic
    assert warm_up["Error"]["Code"] == "InvalidParameterValue.NoFaceInPhoto"
    traffic, stop = Traffic(), threading.Event()
    threads = [threading.Thread(target=traffic.send, args=(server.url, creds, 200, stop)) for _ in range(4)]
    for thread in threads:
        thread.start()
    _traffic_running(3, lambda: bool(traffic.acknowledged_billable))
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    server.start()  # recovery on the same data folder
    ledger = _ledger(server)
    assert traffic.acknowledged_billable, traffic.codes
    assert traffic.acknowledged_billable <= ledger, "an acknowledged billable call was lost"
    assert not (traffic.acknowledged_free & ledger), "a call answered as free was billed"
    assert len(ledger - traffic.acknowledged_billable) <= traffic.unanswered + 1  # + the warm-up call
    _counters_match_ledger(server)
    after = call(server.url, creds, "DetectFace", {"Image": BLANK, "MaxFaceNum": 7})
    assert after["Error"]["Code"] == "InvalidParameterValue.NoFaceInPhoto"
    assert after["RequestId"] in _ledger(server)


SETTLE_SCRIPT = """
import sys
from datetime import datetime, UTC
from pathlib import Path
from facecloud.config import Settings
from facecloud.runtime import Runtime
runtime = Runtime(Settings.from_env(data_dir=Path(sys.argv[1])), migrate=False)
print("ready", flush=True)
print(len(runtime.billing.settle_month(sys.argv[2], datetime(2026, 3, 2, tzinfo=UTC))), flush=True)
"""


def _prepare_settlement(data_dir: Path, accounts: int) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    runtime = Runtime(Settings.from_env(server_env(), data_dir=data_dir))
    try:
        for i in range(accounts):
            account_id = runtime.accounts.find(runtime.accounts.create(f"settle-{i}").secret_id).id
            runtime.billing.top_up(account_id, "100000.00")
            runtime.billing.record_call(
                account_id, "compare", "CompareFace", f"settle-{i}", at=datetime(2026, 2, 10, tzinfo=UTC)
            )
        with runtime.db.session() as s:  # a month of 2M calls per account, so the bills are not zero
            s.execute(
                text(
                    "update billing_usage_monthly set calls = 2000000 + account_id, free_calls = 10000, "
                    "postpaid_calls = 1990000 + account_id where month = '2026-02'"
                )
            )
    finally:
        runtime.close()


def _settlement_state(data_dir: Path) -> list[tuple]:  # type: ignore[type-arg]
    from sqlalchemy import text

    runtime = Runtime(Settings.from_env(server_env(), data_dir=data_dir), migrate=False)
    try:
        with runtime.db.session() as s:
            bills = s.execute(
                text(
                    "select a.name, b.month, count(*) over (partition by b.account_id, b.month) "
                    "from billing_bills b join accounts a on a.id = b.account_id order by a.name"
                )
            )
            wallets = s.execute(
                text("select a.name, w.* from billing_wallets w join accounts a on a.id = w.account_id order by a.name")
            )
            return [tuple(r) for r in bills] + [tuple(str(v) for v in r[:1] + r[2:]) for r in wallets]
    finally:
        runtime.close()


def _bills(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "facecloud.db") as conn:
        return conn.execute("select count(*) from billing_bills").fetchone()[0]


def test_sigkill_during_settlement(tmp_path):
    """Settlement killed at several moments, then run again, ends exactly where an uninterrupted run ends."""
    accounts = 30
    control, victim = tmp_path / "control", tmp_path / "victim"
    for folder in (control, victim):
        _prepare_settlement(folder, accounts)
    python = str(REPO / ".venv" / "bin" / "python")
    subprocess.run(
        [python, "-c", SETTLE_SCRIPT, str(control), "2026-02"],
        check=True,
        env=server_env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    partial = []
    for target in (1, 8, 16, 24):  # kill once that many bills are committed: mid-run, whatever the speed
        run = subprocess.Popen(
            [python, "-c", SETTLE_SCRIPT, str(victim), "2026-02"],
            env=server_env(),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        while run.poll() is None and _bills(victim) < target:
            time.sleep(0.002)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        partial.append(_bills(victim))
    assert any(0 < n < accounts for n in partial), f"no kill landed inside the settlement: {partial}"
    subprocess.run(
        [python, "-c", SETTLE_SCRIPT, str(victim), "2026-02"],
        check=True,
        env=server_env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    expected, got = _settlement_state(control), _settlement_state(victim)
    assert got == expected
    assert _bills(victim) == accounts
    assert all(row[2] == 1 for row in got if len(row) == 3), "a bill was issued twice"


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {result.stderr.strip()}")


def test_disk_full_during_writes(make_server, tmp_path):
    data_dir = tmp_path / "small"
    _mount_tmpfs(data_dir, "3m")
    try:
        server = make_server(data_dir).start()
        creds = server.account("full")
        first = call(server.url, creds, "DetectFace", {"Image": BLANK})
        assert first["Error"]["Code"] == "InvalidParameterValue.NoFaceInPhoto"
        filler = data_dir / "filler"
        with open(filler, "wb", buffering=0) as f:  # take every free byte (unbuffered: nothing left to flush at close)
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        answers = [call(server.url, creds, "DetectFace", {"Image": BLANK, "MaxFaceNum": n}) for n in range(1, 13)]
        codes = {a.get("Error", {}).get("Code", "Success") for a in answers}
        assert "Success" not in codes
        billed_while_full = {a["RequestId"] for a in answers if a["Error"]["Code"].endswith("NoFaceInPhoto")}
        filler.unlink()
        recovered = call(server.url, creds, "DetectFace", {"Image": BLANK, "MaxFaceNum": 20})
        assert recovered["Error"]["Code"] == "InvalidParameterValue.NoFaceInPhoto"
        server.stop()
        server.start()
        ledger = _ledger(server)
        assert {first["RequestId"], recovered["RequestId"]} | billed_while_full <= ledger
        failed = {a["RequestId"] for a in answers} - billed_while_full
        assert not (failed & ledger), "a call answered with an error was billed"
        _counters_match_ledger(server)
        server.stop()
    finally:
        subprocess.run(["umount", "-l", str(data_dir)], check=False)


def _hold_lock(db_path: Path, seconds: float, ready: threading.Event) -> None:
    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    ready.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


def test_database_locked_by_another_process(make_server):
    """An exclusive lock held elsewhere delays writes (busy timeout) or times a call out; never both billed
    and refused, never lost."""
    server = make_server(request_timeout_s="2").start()
    creds = server.account("locked")
    call(server.url, creds, "DetectFace", {"Image": BLANK})  # models loaded
    ready = threading.Event()
    locker = threading.Thread(target=_hold_lock, args=(server.data_dir / "facecloud.db", 4.0, ready))
    locker.start()
    ready.wait(10)
    answers: list[dict] = []

    def one(n: int) -> None:
        answers.append(call(server.url, creds, "DetectFace", {"Image": BLANK, "MaxFaceNum": n}))

    workers = [threading.Thread(target=one, args=(n,)) for n in range(1, 5)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    locker.join()
    codes = [a.get("Error", {}).get("Code", "Success") for a in answers]
    assert len(answers) == 4
    assert set(codes) <= {"InvalidParameterValue.NoFaceInPhoto", "FailedOperation.RequestTimeout"}, codes
    time.sleep(1)
    ledger = _ledger(server)
    for answer in answers:
        billed = answer["RequestId"] in ledger
        assert billed == (answer["Error"]["Code"] == "InvalidParameterValue.NoFaceInPhoto"), answer


def _gallery_consistent(server: ServerProcess) -> None:
    """Face rows per group equal the vector index's entries once it caught up with the change log."""
    runtime = server.runtime()
    try:
        report = runtime.gallery.index_report()
        assert report["consistent"], report
    finally:
        runtime.close()


def test_sigkill_during_enrolment(make_server):
    from tests.conftest import need_data

    photos = sorted(need_data("lfw-dev", "lfw-deepfunneled").glob("*/*_0001.jpg"))[:12]
    images = [base64.b64encode(p.read_bytes()).decode() for p in photos]
    server = make_server().start()
    creds = server.account("enrol")
    assert "Error" not in call(server.url, creds, "CreateGroup", {"GroupId": "g", "GroupName": "g"})
    acknowledged: dict[str, str] = {}
    stop = threading.Event()

    def enrol(worker: int) -> None:
        with httpx.Client() as http:
            for i in range(100):
                if stop.is_set():
                    return
                person = f"w{worker}-{i}"
                body = json.dumps(
                    {
                        "GroupId": "g",
                        "PersonId": person,
                        "PersonName": person,
                        "Image": images[(worker * 7 + i) % len(images)],
                    }
                ).encode()
                try:
                    from tests.hardening.support import signed_post

                    response = signed_post(server.url, creds, "CreatePerson", body, client=http).json()["Response"]
                except (httpx.HTTPError, ValueError):
                    continue
                if "Error" not in response:
                    acknowledged[person] = response["RequestId"]

    threads = [threading.Thread(target=enrol, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    _traffic_running(4, lambda: bool(acknowledged))
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    server.start()
    assert acknowledged, "no enrolment completed before the kill"
    for person in acknowledged:
        assert "Error" not in call(server.url, creds, "GetPersonBaseInfo", {"PersonId": person}), person
    assert set(acknowledged.values()) <= _ledger(server)
    _gallery_consistent(server)
