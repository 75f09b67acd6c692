"""Shared test fixtures: a real facecloud server on loopback, accounts, and the official Tencent SDK pointed at it."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from facecloud.accounts import Credentials
from facecloud.config import Settings
from facecloud.gateway.app import create_app
from facecloud.runtime import Runtime
from facecloud.vision.liveness import PACKAGED_DIR

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACECLOUD_SHARED_DIR", REPO.parent / "shared"))
DATA = SHARED / "data"
LIVENESS_MODELS = PACKAGED_DIR  # the liveness weights shipped in the package


def need_data(*parts: str) -> Path:
    """A folder or file of ../shared/data, or skip the test with the reason."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not found at {path}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    runtime: Runtime
    host: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def new_account(self, name: str = "test") -> Credentials:
        return self.runtime.accounts.create(name)

    def client(self, creds: Credentials, language: str | None = None):  # type: ignore[no-untyped-def]
        return sdk_client(self.endpoint, creds.secret_id, creds.secret_key, language)


def sdk_client(endpoint: str, secret_id: str, secret_key: str, language: str | None = None):  # type: ignore[no-untyped-def]
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.iai.v20200303 import iai_client

    http = HttpProfile(endpoint=endpoint, protocol="http", reqTimeout=120)
    profile = ClientProfile(httpProfile=http, language=language) if language else ClientProfile(httpProfile=http)
    return iai_client.IaiClient(credential.Credential(secret_id, secret_key), "ap-guangzhou", profile)


def server_env(**settings: str) -> dict[str, str]:
    """The environment of a test server: none of the caller's FACECLOUD_* settings but the cache and those given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACECLOUD_")}
    if "FACECLOUD_CACHE_DIR" in os.environ:
        env["FACECLOUD_CACHE_DIR"] = os.environ["FACECLOUD_CACHE_DIR"]
    env.update({f"FACECLOUD_{k.upper()}": v for k, v in settings.items()})
    return env


def test_settings(tmp: Path, **overrides: object) -> Settings:
    return Settings.from_env(server_env(), data_dir=tmp, **overrides)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the whole session (models load once); each test makes its own account."""
    runtime = Runtime(test_settings(tmp_path_factory.mktemp("facecloud-data")))
    yield from _serve(runtime)


def _serve(runtime: Runtime) -> Iterator[LiveServer]:
    port = free_port()
    config = uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not uv.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(runtime, "127.0.0.1", port)
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        runtime.close()


@pytest.fixture
def account(server: LiveServer) -> Credentials:
    return server.new_account()


@pytest.fixture
def client(server: LiveServer, account: Credentials):  # type: ignore[no-untyped-def]
    return server.client(account)


SERVICE_MARKERS = ("postgres", "redis", "browser", "clients")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Where CI promises the services (FACECLOUD_REQUIRE_SERVICES=1), a skipped service test is a failure."""
    outcome = yield
    report = outcome.get_result()
    required = os.environ.get("FACECLOUD_REQUIRE_SERVICES") == "1"
    if required and report.skipped and any(item.get_closest_marker(m) for m in SERVICE_MARKERS):
        report.outcome = "failed"
        report.longrepr = f"skipped although FACECLOUD_REQUIRE_SERVICES=1: {report.longrepr}"


DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def service_url(variable: str, default: str, port: int, what: str) -> str:
    """The URL in `variable`, else the default local address when something listens there, else a skip."""
    url = os.environ.get(variable)
    if url:
        return url
    if _listening(port):
        return default
    pytest.skip(f"{what} tests need {variable}, or a server at 127.0.0.1:{port}")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """Admin URL of a PostgreSQL server (mark tests using it with @pytest.mark.postgres)."""
    return service_url("FACECLOUD_TEST_DATABASE_URL", DEFAULT_DATABASE_URL, 5432, "PostgreSQL")


@contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """A new database on the PostgreSQL server for one test or session, dropped afterwards (skip if unusable)."""
    from sqlalchemy import create_engine, make_url, text

    name = f"facecloud_t_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - a server that is down or refuses is a skip with its reason
        admin.dispose()
        pytest.skip(f"PostgreSQL at FACECLOUD_TEST_DATABASE_URL is not usable: {exc}")
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a Redis server (mark tests using it with @pytest.mark.redis)."""
    return service_url("FACECLOUD_TEST_REDIS_URL", DEFAULT_REDIS_URL, 6379, "Redis")
