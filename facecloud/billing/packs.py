"""Prepaid packs: bought from the wallet's available balance, valid one year, never refunded."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from facecloud.billing import wallet
from facecloud.billing.catalog import Catalog
from facecloud.billing.models import Pack
from facecloud.billing.money import fmt
from facecloud.billing.periods import one_year_later
from facecloud.db import insert_row
from facecloud.errors import ApiError


def buy(
    conn: Connection, catalog: Catalog, zone: ZoneInfo, account_id: int, service: str, size: int, at: datetime
) -> int:
    """Buy one pack; returns its id. The price leaves the available balance (balance minus the freeze)."""
    price = catalog.service(service).pack_price(size)
    state = wallet.load(conn, account_id)
    if state.in_arrears:
        raise ApiError("ResourceUnavailable.InArrears")
    if state.available < price:
        raise ApiError(
            "FailedOperation.InsufficientBalance",
            f"The pack costs {fmt(price)} CNY; the available balance is {fmt(state.available)} CNY.",
            f"资源包价格 {fmt(price)} 元，可用余额 {fmt(state.available)} 元。",
        )
    pack_id = insert_row(
        conn,
        Pack.__table__,
        account_id=account_id,
        service=service,
        size=size,
        price=price,
        purchased_at=at,
        expires_at=one_year_later(at, zone),
        remaining=size,
        low_alerted=False,
        exhausted_alerted=False,
    )
    wallet.change(conn, state, "pack_purchase", -price, reference=f"pack:{pack_id}", at=at)
    return pack_id
