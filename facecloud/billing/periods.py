"""Calendar periods in the billing time zone: times are aware UTC; the zone only decides month and day."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("naive datetime: use timezone-aware UTC")
    return at


def month_of(at: datetime, zone: ZoneInfo) -> str:
    """'YYYY-MM' of the billing month holding `at`."""
    return aware(at).astimezone(zone).strftime("%Y-%m")


def day_of(at: datetime, zone: ZoneInfo) -> str:
    return aware(at).astimezone(zone).strftime("%Y-%m-%d")


def parse_month(month: str) -> tuple[int, int]:
    try:
        year, number = (int(part) for part in month.split("-"))
    except ValueError:
        raise ValueError(f"month must be YYYY-MM, not {month!r}") from None
    if not (1 <= number <= 12 and 1970 <= year <= 9998) or len(month) != 7:
        raise ValueError(f"month must be YYYY-MM, not {month!r}")
    return year, number


def next_month(month: str) -> str:
    year, number = parse_month(month)
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def previous_month(month: str) -> str:
    year, number = parse_month(month)
    return f"{year - (number == 1):04d}-{(number - 2) % 12 + 1:02d}"


def month_start(month: str, zone: ZoneInfo) -> datetime:
    """The instant (UTC) the billing month starts: its 1st, 00:00 in the billing zone."""
    year, number = parse_month(month)
    return datetime(year, number, 1, tzinfo=zone).astimezone(UTC)


def one_year_later(at: datetime, zone: ZoneInfo) -> datetime:
    """Same wall-clock time one year later in the billing zone (29 Feb -> 28 Feb): a pack's expiry instant."""
    local = aware(at).astimezone(zone)
    try:
        later = local.replace(year=local.year + 1)
    except ValueError:
        later = local.replace(year=local.year + 1, day=28)
    return later.replace(tzinfo=zone).astimezone(UTC)
