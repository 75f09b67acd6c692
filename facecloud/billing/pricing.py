"""Pure pricing: a month's postpaid charge (reach-the-tier), a quote for one month, a plan for a year."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from facecloud.billing.catalog import Catalog
from facecloud.billing.money import ZERO, cny, fmt


@dataclass(frozen=True)
class MonthCharge:
    """One service's month: how its calls were covered and what the postpaid part costs (one bill line)."""

    service: str
    calls: int
    free_calls: int
    pack_calls: int
    postpaid_calls: int
    tier: int
    unit_price: Decimal
    amount: Decimal

    @property
    def tier_volume(self) -> int:
        return self.free_calls + self.postpaid_calls


def month_charge(catalog: Catalog, service: str, free_calls: int, pack_calls: int, postpaid_calls: int) -> MonthCharge:
    """Reach-the-tier: the tier volume (free-pack + postpaid calls, not pack-covered ones) picks one unit
    price for every postpaid call; the free pack is never priced; the line is rounded half-up to 0.01 CNY."""
    tier, unit_price = catalog.unit_price(service, free_calls + postpaid_calls)
    return MonthCharge(
        service,
        free_calls + pack_calls + postpaid_calls,
        free_calls,
        pack_calls,
        postpaid_calls,
        tier,
        unit_price,
        cny(postpaid_calls * unit_price),
    )


def split_month(catalog: Catalog, calls: int, pack_capacity: int) -> tuple[int, int, int]:
    """(free, pack, postpaid) calls of a month of `calls` with `pack_capacity` pack calls available."""
    free = min(calls, catalog.free_calls_per_month)
    pack = min(calls - free, pack_capacity)
    return free, pack, calls - free - pack


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMwW万亿]?)\s*$")
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000, "w": 10_000, "万": 10_000, "亿": 100_000_000}


def parse_pack_size(text: str) -> int:
    """'10M', '10000000', '1000万' or '1亿' -> 10_000_000 (etc.)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a pack size: {text!r} (e.g. 1M, 10M, 50M, 100M)")
    return int(Decimal(match.group(1)) * _UNITS[match.group(2).lower()])


def quote(catalog: Catalog, service: str, calls: int, packs: list[int]) -> dict[str, object]:
    """One calendar month of `calls` calls with `packs` (sizes) bought for it."""
    if calls < 0:
        raise ValueError("calls must be >= 0")
    price = catalog.service(service)
    packs_price = sum((price.pack_price(size) for size in packs), ZERO)
    charge = month_charge(catalog, service, *split_month(catalog, calls, sum(packs)))
    return {
        "service": service,
        "calls": calls,
        "packs": [{"size": size, "price": fmt(price.pack_price(size))} for size in packs],
        "free_calls": charge.free_calls,
        "pack_calls": charge.pack_calls,
        "postpaid_calls": charge.postpaid_calls,
        "tier_volume": charge.tier_volume,
        "tier": charge.tier,
        "unit_price": str(charge.unit_price),
        "postpaid_amount": fmt(charge.amount),
        "packs_price": fmt(packs_price),
        "total": fmt(packs_price + charge.amount),
    }


def _year_cost(catalog: Catalog, service: str, monthly_calls: list[int], pack_capacity: int) -> dict[str, object]:
    """A year of months with packs bought at its start: packs cover calls beyond the free pack until used up."""
    free = pack = postpaid = 0
    amount = ZERO
    left = pack_capacity
    for calls in monthly_calls:
        charge = month_charge(catalog, service, *split_month(catalog, calls, left))
        left -= charge.pack_calls
        free, pack, postpaid = (
            free + charge.free_calls,
            pack + charge.pack_calls,
            postpaid + charge.postpaid_calls,
        )
        amount += charge.amount
    return {
        "free_calls": free,
        "pack_calls": pack,
        "postpaid_calls": postpaid,
        "postpaid_amount": amount,
        "unused_pack_calls": left,
    }


def _count_bounds(catalog: Catalog, service: str, calls: int) -> dict[int, int]:
    """The most packs of each size worth comparing: never more than the volume needs, and never k small packs
    where one bigger pack covers as much for no more money."""
    packs = catalog.service(service).packs
    bounds = {}
    for size, price in packs.items():
        bound = math.ceil(calls / size)
        for bigger, bigger_price in packs.items():
            if bigger > size:
                k = math.ceil(bigger / size)
                if k * price >= bigger_price:
                    bound = min(bound, k - 1)
        bounds[size] = bound
    return bounds


def plan(catalog: Catalog, service: str, calls_per_year: int, shown: int = 10) -> dict[str, object]:
    """The cheapest mix of packs (bought at the start of the year, valid one year) and postpaid for a yearly
    volume spread evenly over 12 calendar months, with the alternatives compared (cheapest first)."""
    if calls_per_year < 0:
        raise ValueError("calls per year must be >= 0")
    base, extra = divmod(calls_per_year, 12)
    monthly = [base + (month < extra) for month in range(12)]
    prices = catalog.service(service).packs
    bounds = _count_bounds(catalog, service, calls_per_year)
    sizes = sorted(bounds, reverse=True)
    options = []
    for counts in itertools.product(*(range(bounds[size] + 1) for size in sizes)):
        bought = Counter({size: n for size, n in zip(sizes, counts, strict=True) if n})
        packs_price = sum((prices[size] * n for size, n in bought.items()), ZERO)
        year = _year_cost(catalog, service, monthly, sum(size * n for size, n in bought.items()))
        total = packs_price + year["postpaid_amount"]  # type: ignore[operator]
        options.append(
            (
                total,
                sum(bought.values()),
                {
                    "packs": {str(size): n for size, n in sorted(bought.items(), reverse=True)},
                    "packs_price": fmt(packs_price),
                    **{k: v for k, v in year.items() if k != "postpaid_amount"},
                    "postpaid_amount": fmt(year["postpaid_amount"]),  # type: ignore[arg-type]
                    "total": fmt(total),
                },
            )
        )
    options.sort(key=lambda option: (option[0], option[1]))
    postpaid_only = next(o[2] for o in options if not o[2]["packs"])
    alternatives = [o[2] for o in options[:shown]]
    if postpaid_only not in alternatives:
        alternatives.append(postpaid_only)
    return {
        "service": service,
        "calls_per_year": calls_per_year,
        "assumption": "calls spread evenly over 12 calendar months; packs bought at the start of the year "
        "(valid one year) cover calls beyond each month's free pack until used up; the rest is "
        "postpaid at the tier each month's volume reaches",
        "best": options[0][2],
        "compared": len(options),
        "alternatives": alternatives,
    }
