"""Three (or --nodes) `facecloud serve` processes on loopback ports over one PostgreSQL database (a fresh one of its
own), one Milvus server and one Redis: a mixed load spread by the clients over the nodes for --duration seconds,
one node SIGKILLed half-way (while a CreatePerson is in flight to it) and restarted, then the consistency checks.
Prints one JSON line.

    .venv/bin/python bench/cluster.py --nodes 3 --duration 60

Checks afterwards: ledger rows = billable calls the clients saw answered (by RequestId; a call whose answer the kill
lost may be billed); each CreatePerson whose answer the kill lost committed if and only if it was billed; gallery
rows = index entries (the Milvus index every node searches); a write through each node is found by a search through
every other node; the per-account rate limit holds across nodes (Redis); each billing alert reached the webhook
once.
PostgreSQL: --postgres-url (default FACECLOUD_TEST_DATABASE_URL). Redis: --redis-url (default database 13, so other
users of the server are not touched). Milvus: --milvus-uri, or one started here (facecloud/gallery/milvus_server.py)."""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from prerequisites import require_server
from sqlalchemy import Engine, create_engine, make_url, text

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from load import Client, Mix, Outcome, load_images, new_account, percentile  # noqa: E402
from serving import start_server  # noqa: E402

from facecloud.gallery.milvus_server import spawned  # noqa: E402

RATE_LIMIT_QPS = 5


class Cluster:
    """The node processes; a client asks it for a node URL per request (the load balancer's job)."""

    def __init__(self, root: Path, count: int, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.processes: list[subprocess.Popen | None] = [None] * count
        self.urls: list[str] = [""] * count
        for number in range(count):  # one after another: the first one migrates the fresh database
            self.start(number)

    def start(self, number: int) -> None:
        process, endpoint = start_server(self.root / f"node{number}", 1, self.env)
        self.processes[number], self.urls[number] = process, f"http://{endpoint}"

    def kill(self, number: int) -> None:
        process = self.processes[number]
        assert process is not None
        os.killpg(process.pid, signal.SIGKILL)  # the node and anything it started, no cleanup at all
        process.wait()
        self.processes[number] = None

    def pick(self) -> str:
        return random.choice([u for u, p in zip(self.urls, self.processes, strict=True) if p is not None] or self.urls)

    def stop(self) -> None:
        for process in self.processes:
            if process is not None:
                process.terminate()
        for process in self.processes:
            if process is not None:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


class SpreadClient(Client):
    """bench/load.py's client, sending each request to a node the cluster picks.

    The node killed half-way is killed while a CreatePerson is in flight to it (waiting up to 10 s for one).
    A CreatePerson whose answer was lost (a connection error: the node died) is noted in `lost_creates` and its
    PersonId is kept out of the mix's later DeletePersons, so the check afterwards can tell whether it committed."""

    lost_creates: list[str] = []  # shared by every client of the run
    creating: Counter[str] = Counter()  # CreatePersons in flight, by node URL
    creating_lock = threading.Lock()

    def __init__(self, cluster: Cluster, *args: Any) -> None:
        super().__init__(cluster.urls[0], *args)
        self.cluster = cluster

    def send(self, http: httpx.Client, action_name: str, params: dict[str, Any], measured: bool) -> str:
        self.url = self.cluster.pick()
        self.host = self.url.removeprefix("http://")
        url, creating = self.url, action_name == "CreatePerson"
        with self.creating_lock:
            self.creating[url] += creating
        try:
            code = super().send(http, action_name, params, measured)
        finally:
            with self.creating_lock:
                self.creating[url] -= creating
        if action_name == "CreatePerson" and code.startswith("client:"):
            self.lost_creates.append(params["PersonId"])
            if params["PersonId"] in self.mix.persons:
                self.mix.persons.remove(params["PersonId"])
        return code


class Webhook:
    """Counts the alert POSTs by alert id."""

    def __init__(self) -> None:
        self.received: Counter[int] = Counter()
        received = self.received

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received[body["alert"]["id"]] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"


def prepare_alerts(runtime: Any, account_id: int) -> None:
    """Account `account_id` uses up its free DetectFace calls and holds a pack with 20 calls left: the load's
    DetectFace calls raise pack_low and pack_exhausted alerts (on whichever node serves them)."""
    from facecloud.billing.meter import Call, write_calls
    from facecloud.billing.store import write_transaction

    billing = runtime.billing
    billing.top_up(account_id, "1000")
    pack = billing.buy_pack(account_id, "detect", 1_000_000)
    now = datetime.now(UTC)
    free = [Call(account_id, "detect", "Seed", f"seed-{uuid.uuid4().hex}", now) for _ in range(10_000)]
    with write_transaction(billing.db, [account_id]) as conn:
        write_calls(conn, free, billing.catalog, billing.zone)
    with billing.db.engine.begin() as conn:
        conn.execute(text("UPDATE billing_packs SET remaining = 20 WHERE id = :id"), {"id": pack["id"]})


def signed_call(http: httpx.Client, url: str, creds: Any, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """One TC3-signed call to one node; the Response object, or {"Error": {"Code": "client:..."}}."""
    from facecloud.gateway import tc3

    body = json.dumps(params).encode()
    headers = tc3.sign_headers(
        secret_id=creds.secret_id,
        secret_key=creds.secret_key,
        action=action,
        body=body,
        host=url.removeprefix("http://"),
        timestamp=int(time.time()),
    )
    try:
        return http.post(url + "/", content=body, headers=headers, timeout=120).json()["Response"]
    except (httpx.HTTPError, ValueError, KeyError) as error:
        return {"Error": {"Code": f"client:{type(error).__name__}"}}


def code_of(response: dict[str, Any]) -> str:
    return response.get("Error", {}).get("Code", "Success")


class _Fixed:
    """A cluster of one node (warming each node up in turn)."""

    def __init__(self, url: str) -> None:
        self.urls = [url]

    def pick(self) -> str:
        return self.urls[0]


def rate_limit_probe(cluster: Cluster, creds: Any, seconds: float = 3.0) -> dict[str, Any]:
    """12 threads call GetGroupList of one account through every node as fast as they can; successes per second
    must stay within the per-account limit (the counter lives in Redis, shared by the nodes)."""
    answered: list[str] = []
    first_sent = time.time()
    stop_at = first_sent + seconds

    def hammer() -> None:
        with httpx.Client() as http:
            while time.time() < stop_at:
                params = {"Offset": 0, "Limit": 10, "Nonce": uuid.uuid4().hex}  # (unknown fields are ignored)
                answered.append(code_of(signed_call(http, cluster.pick(), creds, "GetGroupList", params)))

    threads = [threading.Thread(target=hammer) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Every success fell in one of the server's one-second windows between the first send and the last answer.
    windows = int(time.time()) - int(first_sent) + 1
    successes = answered.count("Success")
    return {
        "requests": len(answered),
        "limit_qps": RATE_LIMIT_QPS,
        "successes": successes,
        "seconds_spanned": windows,
        "codes": dict(Counter(answered)),
        "held": successes <= RATE_LIMIT_QPS * windows,
    }


def cross_node_reads(cluster: Cluster, creds: Any, faces: list[str]) -> dict[str, Any]:
    """For each node: a person created through it is found at once by SearchPersons through every other node."""
    checks, found = 0, 0
    urls = list(cluster.urls)
    group = f"xnode-{uuid.uuid4().hex[:8]}"
    with httpx.Client() as http:
        signed_call(http, urls[0], creds, "CreateGroup", {"GroupId": group, "GroupName": group})
        for writer, url in enumerate(urls):
            person, image = f"x{writer}-{uuid.uuid4().hex[:8]}", faces[writer % len(faces)]
            params = {"GroupId": group, "PersonId": person, "PersonName": "x", "Image": image}
            if code_of(signed_call(http, url, creds, "CreatePerson", params)) != "Success":
                continue
            for reader in urls:
                if reader != url:
                    query = {"GroupIds": [group], "Image": image, "MaxPersonNum": 1, "Nonce": reader}
                    response = signed_call(http, reader, creds, "SearchPersons", query)
                    top = ((response.get("Results") or [{}])[0].get("Candidates") or [{}])[0]
                    checks += 1
                    found += top.get("PersonId") == person
    return {"checks": checks, "found": found, "consistent": checks == found == len(urls) * (len(urls) - 1)}


def wait_for_create_on(url: str, seconds: float) -> None:
    deadline = time.time() + seconds
    while SpreadClient.creating[url] <= 0 and time.time() < deadline:
        time.sleep(0.01)


def check_money_and_gallery(
    env: dict[str, str], data_dir: Path, outcomes: list[Outcome], account_ids: list[int]
) -> dict[str, Any]:
    """Ledger rows of the load's accounts against the billable answers its clients saw; gallery rows against the
    index (after it caught up with the change log, as a restarted node does)."""
    from facecloud.config import Settings
    from facecloud.runtime import Runtime

    runtime = Runtime(Settings.from_env(env, data_dir=data_dir), migrate=False)
    try:
        with runtime.db.session() as s:
            rows = set(
                s.execute(
                    text(
                        "SELECT request_id FROM billing_usage_entries WHERE request_id NOT LIKE 'seed-%' "
                        "AND account_id = ANY(:ids)"
                    ),
                    {"ids": account_ids},
                ).scalars()
            )
            unseen_creates = s.scalar(
                text(
                    "SELECT count(*) FROM billing_usage_entries WHERE action = 'CreatePerson' "
                    "AND account_id = ANY(:ids) AND NOT (request_id = ANY(:seen))"
                ),
                {"ids": account_ids, "seen": [o.request_id for o in outcomes if o.request_id]},
            )
            committed_lost = s.scalar(
                text("SELECT count(*) FROM gallery_persons WHERE person_id = ANY(:ids)"),
                {"ids": SpreadClient.lost_creates},
            )
        seen = {o.request_id for o in outcomes if o.billable}
        lost_answers = sum(1 for o in outcomes if o.code.startswith("client:"))
        return {
            "ledger": {
                "billable_seen": len(seen),
                "ledger_rows": len(rows),
                "missing_from_ledger": len(seen - rows),
                "billed_but_not_seen": len(rows - seen),
                "answers_lost_by_the_kill": lost_answers,
                # A call whose answer the kill lost may have been billed (it committed); no other unseen row may exist.
                "consistent": not seen - rows and len(rows - seen) <= lost_answers,
            },
            # CreatePersons whose answer was lost: each one that committed must have its ledger row, and no ledger row
            # of a CreatePerson the clients never saw answered may exist without its person.
            "writes_with_lost_answers": {
                "create_person_sent": len(SpreadClient.lost_creates),
                "committed": int(committed_lost or 0),
                "billed": int(unseen_creates or 0),
                "consistent": committed_lost == unseen_creates,
            },
            "gallery": runtime.gallery.index_report(),
        }
    finally:
        runtime.gallery.close()
        runtime.close()


def drop_database(admin: Engine, database: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()


def alerts_delivered_once(env: dict[str, str], data_dir: Path, webhook: Webhook, wait_s: float) -> dict[str, Any]:
    from facecloud.config import Settings
    from facecloud.runtime import Runtime

    runtime = Runtime(Settings.from_env(env, data_dir=data_dir), migrate=False)
    try:
        deadline = time.time() + wait_s
        while True:
            with runtime.db.session() as s:
                ids = list(s.execute(text("SELECT id FROM billing_alerts ORDER BY id")).scalars())
                pending = s.scalar(text("SELECT count(*) FROM billing_alerts WHERE delivered_at IS NULL"))
            if not pending or time.time() > deadline:
                break
            time.sleep(1)
        return {
            "alerts": len(ids),
            "undelivered": int(pending or 0),
            "posts": sum(webhook.received.values()),
            "posted_twice_or_more": sum(1 for n in webhook.received.values() if n > 1),
            "once_each": bool(ids) and all(webhook.received.get(i) == 1 for i in ids),
        }
    finally:
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=9)
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--restart-after", type=float, default=5.0, help="seconds the killed node stays down")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("FACECLOUD_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--milvus-uri", default="")
    args = parser.parse_args()
    require_server(args.postgres_url, "--postgres-url")
    require_server(args.redis_url, "--redis-url")

    root = Path(tempfile.mkdtemp(prefix="facecloud-cluster-"))
    database = f"facecloud_cluster_{secrets.token_hex(4)}"
    admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    resources = ExitStack()  # closed last (also when the run fails): the database, the folder, the Milvus server
    resources.callback(shutil.rmtree, root, ignore_errors=True)
    resources.callback(drop_database, admin, database)
    cluster: Cluster | None = None
    try:
        milvus_uri = args.milvus_uri
        if not milvus_uri:
            milvus_uri = resources.enter_context(spawned(root / "milvus"))
        from cryptography.fernet import Fernet

        webhook = Webhook()
        env = {
            "FACECLOUD_DATABASE_URL": make_url(args.postgres_url).set(database=database).render_as_string(False),
            "FACECLOUD_VECTOR_BACKEND": "milvus",
            "FACECLOUD_MILVUS_URI": milvus_uri,
            "FACECLOUD_MILVUS_COLLECTION_PREFIX": f"cluster_{secrets.token_hex(3)}_",
            "FACECLOUD_REDIS_URL": args.redis_url,
            "FACECLOUD_MASTER_KEY": Fernet.generate_key().decode(),
            "FACECLOUD_WEBHOOK_URL": webhook.url,
            "FACECLOUD_RATE_LIMIT_QPS": str(RATE_LIMIT_QPS),
        }
        os.environ.update(env)  # the CLI calls below (accounts) and the checks use the same installation
        started = time.time()
        cluster = Cluster(root, args.nodes, env)
        startup_s = time.time() - started
        faces, blank = load_images(40)
        # The load's accounts, then one each for the warm-up, the cross-node reads and the rate-limit probe.
        accounts = [new_account(root / "node0", f"cluster-{n}") for n in range(args.accounts + 3)]
        from facecloud.config import Settings
        from facecloud.runtime import Runtime

        setup = Runtime(Settings.from_env(env, data_dir=root / "setup"), migrate=False)
        account_ids = [setup.accounts.find(c.secret_id).id for c in accounts]
        prepare_alerts(setup, account_ids[0])
        setup.close()

        outcomes: list[Outcome] = []
        warm = SpreadClient(cluster, accounts[args.accounts], Mix(faces, blank, 999), 0, 0, [])
        with httpx.Client() as http:  # every node loads its models before the clock starts
            for url in list(cluster.urls):
                warm.cluster = _Fixed(url)
                for action_name, params in {a: f() for _, a, f in warm.mix.table}.items():
                    warm.send(http, action_name, params, False)
        start = time.time() + 1
        stop = start + args.duration
        clients = [
            SpreadClient(cluster, accounts[i % args.accounts], Mix(faces, blank, i), start, stop, outcomes)
            for i in range(args.clients)
        ]
        for client in clients:
            client.start()
        victim = 1 % args.nodes
        time.sleep(max(0.0, start + args.duration / 2 - time.time()))
        wait_for_create_on(cluster.urls[victim], seconds=10)  # kill it with an enrolment in flight, if one comes
        killed_at = time.time() - start
        cluster.kill(victim)
        time.sleep(args.restart_after)
        cluster.start(victim)
        restarted_at = time.time() - start
        for client in clients:
            client.join(timeout=args.duration + 180)

        rate_limit = rate_limit_probe(cluster, accounts[args.accounts + 2])
        cross = cross_node_reads(cluster, accounts[args.accounts + 1], faces)
        alerts = alerts_delivered_once(env, root / "check", webhook, wait_s=45)
    except BaseException:
        if cluster is not None:
            cluster.stop()
            cluster = None
        resources.close()
        raise
    finally:
        if cluster is not None:
            cluster.stop()
    checks = check_money_and_gallery(env, root / "check", outcomes, account_ids[: args.accounts])
    resources.close()

    measured = [o for o in outcomes if o.measured]
    latencies = [o.latency_s for o in measured]
    codes = Counter(o.code for o in measured)
    report = {
        "bench": "cluster",
        "nodes": args.nodes,
        "duration_s": args.duration,
        "clients": args.clients,
        "cpus": os.cpu_count(),
        "cluster_start_s": round(startup_s, 1),
        "killed": {"node": victim, "at_s": round(killed_at, 1), "restarted_at_s": round(restarted_at, 1)},
        "requests": len(measured),
        "successes": codes.get("Success", 0),
        "errors_by_code": {c: n for c, n in codes.most_common() if c != "Success"},
        "latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)},
        "consistency": {
            **checks,
            "cross_node_read_after_write": cross,
            "rate_limit_across_nodes": rate_limit,
            "alerts": alerts,
        },
    }
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
