"""A facecloud server subprocess for the benchmarks: start, wait until healthy, create accounts, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
FACECLOUD = REPO / ".venv" / "bin" / "facecloud"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, workers: int, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """A server on a free loopback port; returns it and its endpoint (host:port). Its log: data_dir/server.log."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir / "server.log"
    command = [str(FACECLOUD), "serve", "--port", str(port), "--workers", str(workers), "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        [*command, "--log-level", "warning"],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),  # a pipe nobody reads would block the server
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process, f"127.0.0.1:{port}"
        except httpx.HTTPError:
            time.sleep(0.2)
    stop_server(process)
    raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM (graceful), then SIGKILL for the server's own process group if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def create_account(data_dir: Path, name: str = "bench") -> dict[str, str]:
    """{"AppId", "SecretId", "SecretKey"} of a new account, made with the CLI."""
    done = subprocess.run(
        [str(FACECLOUD), "accounts", "create", "--name", name, "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes of a process group (a server and its workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine since boot, all cores (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK"), idle / os.sysconf("SC_CLK_TCK")
