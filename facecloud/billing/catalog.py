"""The price catalog: the seed's price list as data (catalog.json), validated with pydantic when loaded.

Vocabulary (Lago/Stripe): a *service* is a billable metric; a *pack* is a prepaid grant of calls; a *tier*
sets the postpaid unit price for the whole month's volume ("reach-the-tier", Stripe's "volume" tiering)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

CATALOG_FILE = Path(__file__).with_name("catalog.json")


class Tier(BaseModel):
    model_config = ConfigDict(frozen=True)

    tier: PositiveInt
    # Inclusive upper bound of the monthly tier volume; None: no bound (the last tier).
    up_to: PositiveInt | None


class ServicePrice(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[a-z_]+$")
    name_zh: str
    name_en: str
    actions: tuple[str, ...]
    # Pack size (calls) -> price (CNY). Empty: postpaid only.
    packs: dict[int, Decimal]
    # One unit price (CNY per call) per tier, in tier order.
    unit_prices: tuple[Decimal, ...]

    @model_validator(mode="after")
    def _positive(self) -> ServicePrice:
        if any(size <= 0 or price <= 0 for size, price in self.packs.items()):
            raise ValueError(f"{self.id}: pack sizes and prices must be positive")
        if any(price <= 0 for price in self.unit_prices):
            raise ValueError(f"{self.id}: unit prices must be positive")
        if list(self.unit_prices) != sorted(self.unit_prices, reverse=True):
            raise ValueError(f"{self.id}: a higher tier must not cost more per call")
        return self

    @property
    def has_packs(self) -> bool:
        return bool(self.packs)

    def pack_price(self, size: int) -> Decimal:
        if size not in self.packs:
            sizes = ", ".join(str(s) for s in sorted(self.packs)) or "none (postpaid only)"
            raise ValueError(f"service {self.id} sells no pack of {size} calls (sizes: {sizes})")
        return self.packs[size]


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True)

    currency: str = Field(pattern="^CNY$")
    free_calls_per_month: PositiveInt
    pack_validity_years: PositiveInt
    pack_low_alert_ratio: Decimal = Field(gt=0, lt=1)
    freeze_ratio: Decimal = Field(ge=0)
    tiers: tuple[Tier, ...]
    services: tuple[ServicePrice, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        bounds = [t.up_to for t in self.tiers]
        if not bounds or bounds[-1] is not None or None in bounds[:-1]:
            raise ValueError("tiers: only the last tier is unbounded")
        if bounds[:-1] != sorted(set(bounds[:-1])):  # type: ignore[type-var]
            raise ValueError("tiers: bounds must increase")
        if [t.tier for t in self.tiers] != list(range(1, len(self.tiers) + 1)):
            raise ValueError("tiers: numbered 1, 2, ...")
        ids = [s.id for s in self.services]
        if len(ids) != len(set(ids)):
            raise ValueError("services: duplicate id")
        for service in self.services:
            if len(service.unit_prices) != len(self.tiers):
                raise ValueError(f"{service.id}: one unit price per tier")
        return self

    @property
    def service_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.services)

    def service(self, service_id: str) -> ServicePrice:
        for service in self.services:
            if service.id == service_id:
                return service
        raise ValueError(f"unknown service {service_id!r} (one of: {', '.join(self.service_ids)})")

    def tier_for(self, volume: int) -> Tier:
        """The tier a month's tier volume reaches: (0, 3M] -> 1, (3M, 15M] -> 2, > 15M -> 3 (0 -> 1)."""
        for tier in self.tiers:
            if tier.up_to is None or volume <= tier.up_to:
                return tier
        raise AssertionError("the last tier is unbounded")

    def unit_price(self, service_id: str, volume: int) -> tuple[int, Decimal]:
        tier = self.tier_for(volume)
        return tier.tier, self.service(service_id).unit_prices[tier.tier - 1]


def load_catalog(path: Path = CATALOG_FILE) -> Catalog:
    return Catalog.model_validate_json(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    return load_catalog()
