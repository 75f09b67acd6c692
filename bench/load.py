"""A bounded load on loopback: a `facecloud serve --workers N` subprocess, many client threads sending a mix
of the registered actions with TC3 signatures, then checks that the ledger holds exactly the billable calls
the clients saw (by RequestId) and that the gallery's rows match its vector index. Prints one JSON line.

    .venv/bin/python bench/load.py --duration 60 --clients 16 --workers 2

Open loop (--open-loop): requests arrive at a fixed rate whatever the answers do, as real traffic does. After
the closed-loop run (which measures the capacity: requests/s at saturation), each kind's idle p50 is measured
(one request at a time), then the same mix is sent at 50% and 80% of that capacity for --duration seconds each;
per kind: p50/p99 and p99 / idle p50 (the target: <= 3). A kind is an action, or an action with another sort of
work ("DetectFace no face", "DetectFace invalid": see Mix). Latency runs from when a client thread sends the
request; client_send_lag_ms says how long after its arrival time that was (the client shares the server's cores).

    .venv/bin/python bench/load.py --duration 45 --clients 16 --workers 2 --open-loop

--capacity R takes R req/s as the capacity instead (the closed loop still runs): two builds compared on a shared
machine then get the same arrival rates whatever each closed loop measured.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from prerequisites import require_data  # noqa: E402
from serving import create_account, start_server, stop_server  # noqa: E402

from facecloud.accounts import Credentials  # noqa: E402
from facecloud.gateway import tc3  # noqa: E402
from facecloud.gateway.params import validate  # noqa: E402
from facecloud.gateway.registry import BILLABLE_ERRORS, registry  # noqa: E402

LFW = Path(os.environ.get("FACECLOUD_SHARED_DIR", REPO.parent / "shared")) / "data" / "lfw-dev" / "lfw-deepfunneled"


@dataclass
class Outcome:
    action: str
    code: str
    latency_s: float
    request_id: str
    billable: bool
    measured: bool
    lag_s: float = 0.0  # open loop: from the request's arrival time to the client sending it (not in latency_s)
    kind: str = ""  # the mix's request kind (an action, or an action with a variant of other work: "no face")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def load_images(count: int) -> tuple[list[str], str]:
    faces = sorted(LFW.glob("*/*_0001.jpg"))[:count]
    if not faces:
        raise SystemExit(f"no LFW images under {LFW}")
    blank = io.BytesIO()
    Image.fromarray(np.full((240, 240, 3), 128, np.uint8)).save(blank, "JPEG")
    return [b64(p.read_bytes()) for p in faces], b64(blank.getvalue())


class Mix:
    """The actions of this build, weighted; each returns (kind, action, params) for one call. A kind names an
    action with one sort of request: DetectFace on a photo without a face searches the padded canvas too (several
    times a face photo's work), and an invalid one stops at validation, so each is measured on its own."""

    def __init__(self, faces: list[str], blank: str, client_id: int) -> None:
        self.faces, self.blank, self.client_id = faces, blank, client_id
        self.persons: list[str] = []
        self.group = f"load-{client_id}"
        names = set(registry())
        table = [
            (30, "DetectFace", "", lambda: {"Image": self.face(), "MaxFaceNum": 2}),
            (5, "DetectFace", "no face", lambda: {"Image": self.blank}),  # NoFaceInPhoto: billable
            (10, "CompareFace", "", lambda: {"ImageA": self.face(), "ImageB": self.face()}),
            (8, "AnalyzeFace", "", lambda: {"Image": self.face()}),
            (8, "DetectLiveFace", "", lambda: {"Image": self.face()}),
            (3, "DetectLiveFaceAccurate", "", lambda: {"Image": self.face()}),
            (5, "DetectFace", "invalid", lambda: {"Image": self.face(), "MaxFaceNum": 1000}),  # free
            (10, "CreatePerson", "", self.create_person),
            (8, "SearchFaces", "", lambda: {"GroupIds": [self.group], "Image": self.face()}),
            (5, "GetPersonListNum", "", lambda: {"GroupId": self.group}),
            (3, "DeletePerson", "", self.delete_person),
        ]
        self.table = [(w, f"{a} {variant}".strip(), a, f) for w, a, variant, f in table if a in names]
        self.weights = [w for w, *_ in self.table]

    def face(self) -> str:
        return random.choice(self.faces)

    def create_person(self) -> dict[str, Any]:
        person = f"p{self.client_id}-{uuid.uuid4().hex[:12]}"
        self.persons.append(person)
        return {"GroupId": self.group, "PersonId": person, "PersonName": person, "Image": self.face()}

    def delete_person(self) -> dict[str, Any]:
        return {"PersonId": self.persons.pop(0) if self.persons else "nobody"}

    def kinds(self) -> list[str]:
        return [kind for _, kind, _, _ in self.table]

    def next(self, kind: str | None = None) -> tuple[str, str, dict[str, Any]]:
        """A call of this kind, or of one drawn by the weights."""
        if kind is None:
            _, kind, name, make = random.choices(self.table, weights=self.weights)[0]
        else:
            _, kind, name, make = next(entry for entry in self.table if entry[1] == kind)
        return kind, name, make()


def billed(action_name: str, params: dict[str, Any]) -> bool:
    action = registry()[action_name]
    try:
        return action.billed_service(validate(action.request, params)) is not None
    except Exception:
        return False


class Client(threading.Thread):
    def __init__(self, url: str, creds: Credentials, mix: Mix, start: float, stop: float, sink: list[Outcome]) -> None:
        super().__init__(daemon=True)
        self.url, self.creds, self.mix, self.start_at, self.stop_at, self.sink = (
            url,
            creds,
            mix,
            start,
            stop,
            sink,
        )
        self.host = url.removeprefix("http://")

    def send(
        self,
        http: httpx.Client,
        action_name: str,
        params: dict[str, Any],
        measured: bool,
        arrival: float = 0.0,
        kind: str = "",
    ) -> str:
        body = json.dumps(params).encode()
        headers = tc3.sign_headers(
            secret_id=self.creds.secret_id,
            secret_key=self.creds.secret_key,
            action=action_name,
            body=body,
            host=self.host,
            timestamp=int(time.time()),
        )
        started = time.perf_counter()
        try:
            response = http.post(self.url + "/", content=body, headers=headers, timeout=120).json()["Response"]
            code = response.get("Error", {}).get("Code", "Success")
            request_id = response.get("RequestId", "")
        except (httpx.HTTPError, ValueError, KeyError) as error:
            code, request_id = f"client:{type(error).__name__}", ""
        latency = time.perf_counter() - started
        billable = billed(action_name, params) and (code == "Success" or code in BILLABLE_ERRORS)
        lag = started - arrival if arrival else 0.0
        self.sink.append(Outcome(action_name, code, latency, request_id, billable, measured, lag, kind or action_name))
        return code

    def run(self) -> None:
        with httpx.Client() as http:
            if "CreateGroup" in registry():
                self.send(http, "CreateGroup", {"GroupId": self.mix.group, "GroupName": self.mix.group}, False)
            time.sleep(max(0.0, self.start_at - time.time()))
            while time.time() < self.stop_at:
                kind, action_name, params = self.mix.next()
                self.send(http, action_name, params, True, kind=kind)


IDLE_SAMPLES = 7
OPEN_LOOP_FRACTIONS = (0.5, 0.8)
P99_TARGET_RATIO = 3.0


class OpenLoop:
    """Senders that share mixes (one per client id, each with its group) and one HTTP client per thread."""

    def __init__(self, url: str, accounts: list[Credentials], mixes: list[Mix]) -> None:
        self.url, self.accounts, self.mixes = url, accounts, mixes
        self._local = threading.local()
        self._turn = iter(range(1 << 62))
        self._turn_lock = threading.Lock()

    def _http(self) -> httpx.Client:
        if not hasattr(self._local, "http"):
            self._local.http = httpx.Client()
        return self._local.http

    def send_one(
        self, sink: list[Outcome], arrival: float = 0.0, kind: str | None = None, index: int | None = None
    ) -> None:
        if index is None:
            with self._turn_lock:
                index = next(self._turn) % len(self.mixes)
        mix = self.mixes[index]
        client = Client(self.url, self.accounts[index % len(self.accounts)], mix, 0, 0, sink)
        kind, name, params = mix.next(kind)
        client.send(self._http(), name, params, True, arrival, kind)

    def idle_p50(self, sink: list[Outcome]) -> dict[str, float]:
        """Each kind's median latency with nothing else in flight. All from one mix, so that its DeletePerson
        calls delete the persons its CreatePerson calls made, as they do under load (from an empty group they
        would only measure the PersonIdNotExist answer)."""
        for kind in sorted(self.mixes[0].kinds()):
            for _ in range(IDLE_SAMPLES):
                self.send_one(sink, kind=kind, index=0)
        by_kind: dict[str, list[float]] = defaultdict(list)
        for o in sink:
            by_kind[o.kind].append(o.latency_s)
        return {k: percentile(v, 50) for k, v in by_kind.items()}

    def run(self, rate: float, duration: float) -> list[Outcome]:
        """Arrivals every 1/rate seconds for duration seconds; each is sent on its own pool thread."""
        sink: list[Outcome] = []
        arrivals = int(rate * duration)
        with ThreadPoolExecutor(max_workers=256) as pool:
            start = time.perf_counter()
            for i in range(arrivals):
                arrival = start + i / rate
                time.sleep(max(0.0, arrival - time.perf_counter()))
                pool.submit(self.send_one, sink, arrival)
        return sink


def open_loop_report(outcomes: list[Outcome], idle: dict[str, float], rate: float, duration: float) -> dict:
    by_kind: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        by_kind[o.kind].append(o.latency_s)
    kinds = {}
    for name, values in sorted(by_kind.items()):
        p99 = percentile(values, 99)
        ratio = round(p99 / idle[name], 2) if idle.get(name) else None
        kinds[name] = {
            "requests": len(values),
            "p50_ms": percentile(values, 50),
            "p99_ms": p99,
            "idle_p50_ms": idle.get(name),
            "p99_over_idle_p50": ratio,
            "within_target": ratio is not None and ratio <= P99_TARGET_RATIO,
        }
    return {
        "rate_rps": round(rate, 2),
        "answered_rps": round(len(outcomes) / duration, 2),
        "codes": dict(Counter(o.code for o in outcomes).most_common()),
        # how late the client sent requests after their arrival times: large values mean it did not keep up
        "client_send_lag_ms": {q: percentile([o.lag_s for o in outcomes], int(q[1:])) for q in ("p50", "p99")},
        "by_kind": kinds,
    }


def open_loop(url: str, accounts: list[Credentials], faces: list[str], blank: str, args, capacity: float) -> dict:  # type: ignore[no-untyped-def]
    mixes = [Mix(faces, blank, 1000 + i) for i in range(args.clients)]
    loop = OpenLoop(url, accounts, mixes)
    with httpx.Client() as http:
        for index, mix in enumerate(mixes):
            if "CreateGroup" in registry():
                sender = Client(url, accounts[index % len(accounts)], mix, 0, 0, [])
                sender.send(http, "CreateGroup", {"GroupId": mix.group, "GroupName": mix.group}, False)
    outcomes: list[Outcome] = []
    idle = loop.idle_p50(outcomes)
    phases = {}
    for fraction in OPEN_LOOP_FRACTIONS:
        rate = fraction * capacity
        sink = loop.run(rate, args.duration)
        outcomes += sink
        phases[f"{round(fraction * 100)}%"] = open_loop_report(sink, idle, rate, args.duration)
    return {"capacity_rps": round(capacity, 2), "idle_p50_ms": idle, "phases": phases, "outcomes": outcomes}


def new_account(data_dir: Path, name: str) -> Credentials:
    data = create_account(data_dir, name)
    return Credentials(data["AppId"], data["SecretId"], data["SecretKey"])


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else 0.0


def check_ledger(data_dir: Path, outcomes: list[Outcome]) -> dict[str, Any]:
    from sqlalchemy import text

    from facecloud.config import Settings
    from facecloud.runtime import Runtime

    runtime = Runtime(Settings.from_env(data_dir=data_dir), migrate=False)
    try:
        with runtime.db.session() as s:
            rows = set(s.execute(text("select request_id from billing_usage_entries")).scalars())
        seen = {o.request_id for o in outcomes if o.billable}
        lost_answers = sum(1 for o in outcomes if o.code.startswith("client:"))
        result: dict[str, Any] = {
            "billable_seen": len(seen),
            "ledger_rows": len(rows),
            "missing_from_ledger": len(seen - rows),
            "billed_but_not_billable": len(rows - seen),
            "unanswered_requests": lost_answers,
            "consistent": seen == rows,
        }
        result["gallery"] = check_gallery(runtime)
        return result
    finally:
        runtime.close()


def check_gallery(runtime: Any) -> dict[str, Any]:
    """Per group: face rows and person rows in the database vs the vector index's entries (after it caught up
    with the change log, as a restarted server does)."""
    try:
        gallery = runtime.gallery
    except (ImportError, AttributeError) as error:
        return {"checked": False, "reason": f"no gallery in this build ({type(error).__name__})"}
    return {"checked": True, **gallery.index_report()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of measured load")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--open-loop", action="store_true", help="then 50%% and 80%% of capacity, fixed arrivals")
    parser.add_argument(
        "--capacity",
        type=float,
        default=0.0,
        help="open loop: rates from this capacity (req/s) instead of the closed loop's, so that an A/B of two builds "
        "on a shared machine sends both the same arrivals",
    )
    args = parser.parse_args()
    require_data(LFW)

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="facecloud-load-"))
    faces, blank = load_images(args.images)
    server, endpoint = start_server(data_dir, args.workers)
    url = f"http://{endpoint}"
    outcomes: list[Outcome] = []
    try:
        accounts = [new_account(data_dir, f"load-{i}") for i in range(args.accounts)]
        warm = Client(url, accounts[0], Mix(faces, blank, 999), 0, 0, outcomes)
        with httpx.Client() as http:  # every worker loads its models before the clock starts
            for _ in range(args.workers * 3):
                for kind in warm.mix.kinds():
                    _, action_name, params = warm.mix.next(kind)
                    warm.send(http, action_name, params, False)
        start = time.time() + 1
        stop = start + args.duration
        clients = [
            Client(url, accounts[i % len(accounts)], Mix(faces, blank, i), start, stop, outcomes)
            for i in range(args.clients)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=args.duration + 180)
        opened = None
        if args.open_loop:
            capacity = args.capacity or sum(o.measured for o in outcomes) / args.duration
            opened = open_loop(url, accounts, faces, blank, args, capacity)
        alive = httpx.get(url + "/healthz", timeout=5).status_code == 200
    finally:
        stop_server(server)

    measured = [o for o in outcomes if o.measured]
    latencies = [o.latency_s for o in measured]
    by_action: dict[str, list[float]] = defaultdict(list)
    for o in measured:
        by_action[o.action].append(o.latency_s)
    report = {
        "bench": "load",
        "duration_s": args.duration,
        "clients": args.clients,
        "accounts": args.accounts,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "requests": len(measured),
        "throughput_rps": round(len(measured) / args.duration, 2),
        "successes_rps": round(sum(o.code == "Success" for o in measured) / args.duration, 2),
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
            "max": round(max(latencies, default=0) * 1000, 1),
        },
        "by_action": {
            a: {"requests": len(v), "p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99)}
            for a, v in sorted(by_action.items())
        },
        "codes": dict(Counter(o.code for o in measured).most_common()),
        "server_alive_after": alive,
    }
    if opened is not None:
        outcomes += opened.pop("outcomes")
        report["open_loop"] = opened
    report["ledger"] = check_ledger(data_dir, outcomes)
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
