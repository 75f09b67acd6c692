"""What a bench needs before it can measure anything: a file another bench writes, the data under ../shared/data, a
server. When one is missing the bench prints one line (stderr) saying what to run or provide, and exits with status 2
(a fresh clone has no bench/out/)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PORTS = {"postgresql": 5432, "redis": 6379, "http": 80}
MISSING = 2


def missing(reason: str) -> NoReturn:
    print(f"{Path(sys.argv[0]).name}: {reason}", file=sys.stderr)
    raise SystemExit(MISSING)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def require_output(path: Path, command: str) -> None:
    """A file another bench writes (bench/out/...): say which command writes it."""
    if not path.is_file():
        missing(f"{_shown(path)} is missing: run `{command}` first")


def require_data(*paths: Path) -> None:
    """Files or folders of ../shared/data (see its README)."""
    for path in paths:
        if not path.exists():
            missing(f"{path} is missing: this bench reads ../shared/data (see its README)")


def require_server(url: str, option: str) -> None:
    """A server the bench talks to (PostgreSQL, Redis, Milvus): something must listen at the URL's host and port."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    host, port = parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORTS.get(scheme, 80)
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        missing(f"nothing listens at {host}:{port} ({scheme}): start that server first, or pass {option}")
