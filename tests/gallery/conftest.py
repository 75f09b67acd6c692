"""A real Milvus server for the gallery's backend tests: FACECLOUD_TEST_MILVUS_URI, or one started here from the
`milvus` package (scripts/milvus_server.py, about 15 s) for the whole session. Each test names its own collections
(a fresh prefix), so tests and xdist workers never see each other's entries."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    uri = os.environ.get("FACECLOUD_TEST_MILVUS_URI")
    if uri:
        yield uri
        return
    try:
        import milvus  # noqa: F401
    except ImportError:
        pytest.skip("Milvus server tests need the `milvus` package (test extras) or FACECLOUD_TEST_MILVUS_URI")
    data = tmp_path_factory.mktemp("milvus-server")
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "milvus_server.py"), "--data", str(data)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()  # the URI, once the server answers its health check
    if not line.startswith("http://"):
        process.kill()
        pytest.skip(f"the Milvus server did not start (see {data}/logs)")
    try:
        yield line
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.fixture
def milvus_prefix() -> str:
    return f"t{secrets.token_hex(4)}_"
