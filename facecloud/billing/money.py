"""Money: Decimal CNY rounded half-up to 0.01, stored as integer fen so every backend sums it exactly."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import BigInteger, String, TypeDecorator

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def cny(value: Decimal | int | str) -> Decimal:
    """Round half-up to 0.01 CNY (the rounding of every bill line, freeze and price)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def fmt(value: Decimal) -> str:
    return str(cny(value))


class Money(TypeDecorator[Decimal]):
    """Decimal CNY with two decimals, stored as BIGINT fen."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: object) -> int | None:
        if value is None:
            return None
        amount = Decimal(value)
        if amount != cny(amount):
            raise ValueError(f"money must have at most two decimals: {amount}")
        return int(amount * 100)

    def process_result_value(self, value: int | None, dialect: object) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) / 100).quantize(CENT)


class DecimalText(TypeDecorator[Decimal]):
    """An exact Decimal (a unit price such as 0.0032) stored as text."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: object) -> str | None:
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value: str | None, dialect: object) -> Decimal | None:
        return None if value is None else Decimal(value)
