"""`facecloud serve` as a real process (the CLI a user runs), for tests that need one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from facecloud.accounts import Credentials
from facecloud.config import Settings
from facecloud.runtime import Runtime
from tests.conftest import REPO, sdk_client, server_env

__all__ = ["ServerProcess", "server_env"]

FACECLOUD = REPO / ".venv" / "bin" / "facecloud"


@dataclass
class ServerProcess:
    data_dir: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    serve_args: list[str] = field(default_factory=list)
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.endpoint}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(FACECLOUD),
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--log-level",
                "warning",
                *self.serve_args,
            ],
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.process.poll() is None, "server exited at start"
            try:
                if httpx.get(self.url + "/healthz", timeout=1, verify=False).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def account(self, name: str) -> Credentials:
        out = subprocess.run(
            [str(FACECLOUD), "accounts", "create", "--name", name, "--data-dir", str(self.data_dir)],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        data = json.loads(out)
        return Credentials(data["AppId"], data["SecretId"], data["SecretKey"])

    def client(self, creds: Credentials):  # type: ignore[no-untyped-def]
        return sdk_client(self.endpoint, creds.secret_id, creds.secret_key)

    def runtime(self) -> Runtime:
        return Runtime(Settings.from_env(self.env, data_dir=self.data_dir), migrate=False)
