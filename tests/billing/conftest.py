"""Billing fixtures: a fresh database (its own data dir) per test, an account in it, and the Billing under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facecloud.billing import Billing
from facecloud.runtime import Runtime
from tests.conftest import test_settings


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(test_settings(tmp_path))
    yield rt
    rt.close()


@pytest.fixture
def billing(runtime: Runtime) -> Billing:
    return runtime.billing


@pytest.fixture
def account_id(runtime: Runtime) -> int:
    creds = runtime.accounts.create("billing-test")
    return runtime.accounts.find(str(creds.app_id)).id
