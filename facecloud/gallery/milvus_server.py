"""A real Milvus standalone server (PyPI `milvus` 2.3.5: Milvus with its own etcd and local storage) on 127.0.0.1.

`spawned(data_dir)` runs one in a child process for a block (the tests, bench/search.py, bench/cluster.py);
`python -m facecloud.gallery.milvus_server --data DIR` (or scripts/milvus_server.py) runs one until SIGTERM/SIGINT
and prints its URI once it answers. The first free port from 19530 up is taken, so several servers can run on one
machine. The `milvus` package is a test extra: it is not needed to serve."""

from __future__ import annotations

import argparse
import fcntl
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_LOCK = Path("/tmp/facecloud-milvus-start.lock")  # two servers starting at once could pick the same port


class MilvusDidNotStart(RuntimeError):
    """The server process ended or printed something other than its URI (its logs are under the data folder)."""


def start(data_dir: Path):  # type: ignore[no-untyped-def]
    """A started MilvusServer (call .stop()) and its URI, in this process."""
    from milvus import MilvusServer

    server = MilvusServer()
    server.set_base_dir(str(data_dir))
    with START_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server.start()
    return server, f"http://127.0.0.1:{server.listen_port}"


@contextmanager
def spawned(data_dir: Path) -> Iterator[str]:
    """The URI of a Milvus server run in a child process for the block (about 15 s to start); stopped after it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "facecloud.gallery.milvus_server", "--data", str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert process.stdout is not None
    uri = process.stdout.readline().strip()  # printed once the server answers its health check
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
