"""A real Milvus server for the gallery's backend tests: FACECLOUD_TEST_MILVUS_URI, or one started here from the
`milvus` package (facecloud/gallery/milvus_server.py, about 15 s) for the whole session. Each test names its own
collections (a fresh prefix), so tests and xdist workers never see each other's entries."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack

import pytest


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
    from facecloud.gallery.milvus_server import MilvusDidNotStart, spawned

    data = tmp_path_factory.mktemp("milvus-server")
    with ExitStack() as stack:
        try:
            uri = stack.enter_context(spawned(data))
        except MilvusDidNotStart as error:
            pytest.skip(str(error))
        yield uri


@pytest.fixture
def milvus_prefix() -> str:
    return f"t{secrets.token_hex(4)}_"
