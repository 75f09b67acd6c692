"""The ledger on PostgreSQL: migrations, concurrent metering (advisory locks), packs, settlement, arrears."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from facecloud.runtime import Runtime
from tests.billing.helpers import record_many, set_pack_remaining
from tests.conftest import fresh_postgres_database
from tests.conftest import test_settings as settings_in

pytestmark = pytest.mark.postgres
MAY = datetime(2025, 5, 10, 4, 0, tzinfo=UTC)


@pytest.fixture
def pg_runtime(postgres_url: str, tmp_path: Path) -> Iterator[Runtime]:
    with fresh_postgres_database(postgres_url) as url:
        runtime = Runtime(settings_in(tmp_path, database_url=url))
        try:
            yield runtime
        finally:
            runtime.close()


def test_metering_packs_settlement_and_arrears_on_postgres(pg_runtime: Runtime) -> None:
    billing = pg_runtime.billing
    account = pg_runtime.accounts.find(str(pg_runtime.accounts.create("pg").app_id)).id
    ids = [str(uuid.uuid4()) for _ in range(200)]

    def call(chunk: list[str]) -> None:
        for request_id in chunk:
            billing.record_call(account, "compare", "CompareFace", request_id, at=MAY)

    threads = [threading.Thread(target=call, args=(ids[i::6] + ids[:3],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert billing.usage_summary(account, "2025-05")["totals"]["calls"] == 200

    billing.top_up(account, "3100.00")
    pack = billing.buy_pack(account, "compare", 1_000_000, at=MAY)
    record_many(billing, account, "compare", 9_800, MAY)  # the free pack is used up
    set_pack_remaining(billing, pack["id"], 1)
    record_many(billing, account, "compare", 10_001, MAY)  # 1 from the pack, 10,000 postpaid = 32.00
    assert [a["kind"] for a in billing.alerts(account)] == ["pack_exhausted", "pack_low"]

    bill = billing.settle(account, "2025-05", at=datetime(2025, 6, 2, tzinfo=UTC))
    assert (bill["total"], bill["in_arrears"]) == ("32.00", True)
    assert billing.settle(account, "2025-05", at=datetime(2025, 6, 2, tzinfo=UTC))["id"] == bill["id"]
    assert billing.wallet(account)["in_arrears"] is True
    assert billing.top_up(account, "70.40")["in_arrears"] is False  # 32.00 debt + 38.40 freeze
