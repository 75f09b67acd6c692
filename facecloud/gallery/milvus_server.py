"""A real Milvus standalone server (PyPI `milvus` 2.3.5: Milvus with its own etcd and local storage) on 127.0.0.1.

`spawned(data_dir)` runs one in a child process for a block (the tests, bench/search.py, bench/cluster.py);
`python -m facecloud.gallery.milvus_server --data DIR` (or scripts/milvus_server.py) runs one until SIGTERM/SIGINT
and prints its URI once it answers. The `milvus` package is a test extra: it is not needed to serve.

One such server per machine at a time: its embedded etcd listens on fixed ports (2379, 2380), and a second server
started beside a running one panics at start (seen here: "closing etcd server", then a nil etcd client). So a server
holds START_LOCK for its whole life, and a second one waits for the first to end."""

from __future__ import annotations

import argparse
import fcntl
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_LOCK = Path("/tmp/facecloud-milvus-start.lock")
# A Strong read (what the Milvus index searches with) waits for the server's next time tick after the request:
# 200 ms by default. Measured at 10k faces (bench/search.py): ticks of 200 / 50 / 20 ms give search p50 200 / 51 /
# 23 ms for 2.3% / 4.3% / 8.6% of a core at idle. docs/scaling.md gives the same setting for a deployed server.
TIME_TICK_MS = 20
START_TIMEOUT_S = 900.0  # includes waiting for another server of this machine to end
_HELD: list[object] = []


class MilvusDidNotStart(RuntimeError):
    """The server process ended or printed something other than its URI (its logs are under the data folder)."""


def start(data_dir: Path):  # type: ignore[no-untyped-def]
    """A started MilvusServer (call .stop()) and its URI, in this process, which holds START_LOCK until it exits."""
    from milvus import MilvusServer

    server = MilvusServer()
    server.set_base_dir(str(data_dir))
    server.config.set("proxy.timeTickInterval", TIME_TICK_MS)
    lock = START_LOCK.open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    _HELD.append(lock)  # kept open: released when this process exits
    server.start()
    return server, f"http://127.0.0.1:{server.listen_port}"


@contextmanager
def spawned(data_dir: Path, start_timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """The URI of a Milvus server run in a child process for the block (about 15 s to start); stopped after it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "facecloud.gallery.milvus_server", "--data", str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], start_timeout_s)
    uri = process.stdout.readline().strip() if ready else ""  # printed once the server answers its health check
    if not uri.startswith("http://"):
        process.kill()
        process.wait()
        raise MilvusDidNotStart(f"the Milvus server did not start (see {data_dir}/logs)")
    try:
        yield uri
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a Milvus standalone server until SIGTERM; print its URI.")
    parser.add_argument("--data", type=Path, required=True, help="folder for Milvus's etcd, logs and segments")
    args = parser.parse_args()
    server, uri = start(args.data)
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    print(uri, flush=True)
    try:
        while not stopped.wait(1.0) and server.server_proc.poll() is None:
            pass
    finally:
        server.stop()
    sys.exit(0 if stopped.is_set() else 1)


if __name__ == "__main__":
    main()
