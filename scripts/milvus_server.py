"""Start a real Milvus standalone server (PyPI `milvus` 2.3.5: Milvus with its own etcd and local storage) on
127.0.0.1 and print its URI once it answers; it runs until this process gets SIGTERM/SIGINT.

    .venv/bin/python scripts/milvus_server.py --data /tmp/milvus-data      # prints http://127.0.0.1:19530

Used by the tests (tests/gallery/conftest.py), the benches and docs/scaling.md. The first free port from 19530 up
is taken, so several servers can run on one machine."""

from __future__ import annotations

import argparse
import fcntl
import signal
import sys
import threading
from pathlib import Path

START_LOCK = Path("/tmp/facecloud-milvus-start.lock")  # two servers starting at once could pick the same port


def start(data_dir: Path):  # type: ignore[no-untyped-def]
    """A started MilvusServer (call .stop()) and its URI."""
    from milvus import MilvusServer

    server = MilvusServer()
    server.set_base_dir(str(data_dir))
    with START_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server.start()
    return server, f"http://127.0.0.1:{server.listen_port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
