"""The price list as data, the seed's five worked examples, and every tier and free-pack boundary."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from facecloud.billing.catalog import CATALOG_FILE, Catalog, default_catalog
from facecloud.billing.pricing import month_charge, parse_pack_size, plan, quote

C = default_catalog()


def test_catalog_matches_the_seed_tables() -> None:
    assert C.service("compare").packs[10_000_000] == Decimal("30400")
    assert C.service("detect").packs[100_000_000] == Decimal("25000")
    assert C.service("liveness").unit_prices == (Decimal("0.0019"), Decimal("0.0017"), Decimal("0.0013"))
    assert not C.service("multi_search").has_packs
    assert set(C.service_ids) == {
        "detect",
        "landmarks",
        "compare",
        "verify",
        "search",
        "multi_search",
        "person_mgmt",
        "liveness",
    }


def test_catalog_rejects_an_inconsistent_price_list() -> None:
    data = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    data["services"][0]["unit_prices"] = ["0.0005", "0.0004"]
    with pytest.raises(ValidationError, match="one unit price per tier"):
        Catalog.model_validate(data)
    data = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    data["tiers"][1]["up_to"] = 1000
    with pytest.raises(ValidationError, match="bounds must increase"):
        Catalog.model_validate(data)


@pytest.mark.parametrize(
    ("service", "calls", "packs", "total"),
    [
        ("search", 52_000_000, [50_000_000], "148868.00"),
        ("landmarks", 1_000_000, [], "1980.00"),
        ("compare", 3_500_000, [], "10470.00"),
        ("liveness", 5_000_000, [], "8483.00"),
    ],
)
def test_the_seed_monthly_examples(service: str, calls: int, packs: list[int], total: str) -> None:
    assert quote(C, service, calls, packs)["total"] == total


def test_the_seed_yearly_example_is_the_cheapest_plan() -> None:
    result = plan(C, "compare", 30_000_000)
    assert result["best"]["packs"] == {"10000000": 3}
    assert result["best"]["total"] == "91200.00"
    totals = [Decimal(a["total"]) for a in result["alternatives"]]
    assert totals == sorted(totals) and len(result["alternatives"]) > 1
    assert any(not a["packs"] for a in result["alternatives"])  # postpaid only is among those compared


def test_multi_search_plan_is_postpaid_only() -> None:
    result = plan(C, "multi_search", 1_200_000)
    assert result["compared"] == 1 and result["best"]["packs"] == {}


@pytest.mark.parametrize(
    ("calls", "tier", "unit"),
    [
        (3_000_000, 1, "0.0032"),
        (3_000_001, 2, "0.003"),
        (15_000_000, 2, "0.003"),
        (15_000_001, 3, "0.0027"),
    ],
)
def test_tier_boundaries(calls: int, tier: int, unit: str) -> None:
    q = quote(C, "compare", calls, [])
    assert (q["tier"], q["unit_price"]) == (tier, unit)
    assert Decimal(q["total"]) == ((calls - 10_000) * Decimal(unit)).quantize(Decimal("0.01"))


def test_pack_covered_calls_do_not_count_toward_the_tier() -> None:
    # 10k free + 10M pack + 3M postpaid: tier volume 3,010,000 -> tier 2; without the pack rule it would be tier 3.
    q = quote(C, "compare", 13_010_000, [10_000_000])
    assert (q["pack_calls"], q["postpaid_calls"], q["tier"]) == (10_000_000, 3_000_000, 2)
    assert q["total"] == "39400.00"


@pytest.mark.parametrize(
    ("calls", "free", "postpaid", "amount"),
    [
        (0, 0, 0, "0.00"),
        (9_999, 9_999, 0, "0.00"),
        (10_000, 10_000, 0, "0.00"),
        (10_001, 10_000, 1, "0.00"),
        (10_003, 10_000, 3, "0.01"),
    ],
)
def test_free_pack_edge(calls: int, free: int, postpaid: int, amount: str) -> None:
    q = quote(C, "landmarks", calls, [])  # 0.002 per call: 1 call is 0.002 -> 0.00, 3 calls 0.006 -> 0.01
    assert (q["free_calls"], q["postpaid_calls"], q["postpaid_amount"]) == (free, postpaid, amount)


def test_month_charge_rounds_half_up_per_line() -> None:
    assert month_charge(C, "detect", 10_000, 0, 1).amount == Decimal("0.00")  # 0.0005
    assert month_charge(C, "detect", 10_000, 0, 3).amount == Decimal("0.00")  # 0.0015 -> 0.00
    assert month_charge(C, "detect", 10_000, 0, 10).amount == Decimal("0.01")  # 0.005 -> 0.01 (half-up)


def test_pack_sizes_parse_and_unknown_sizes_are_refused() -> None:
    assert [parse_pack_size(s) for s in ("1M", "10m", "5000万", "1亿", "100000000")] == [
        1_000_000,
        10_000_000,
        50_000_000,
        100_000_000,
        100_000_000,
    ]
    with pytest.raises(ValueError, match="sells no pack"):
        quote(C, "compare", 1, [2_000_000])
    with pytest.raises(ValueError, match="postpaid only"):
        quote(C, "multi_search", 1, [1_000_000])
