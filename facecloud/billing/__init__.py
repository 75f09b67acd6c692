"""Billing: the price catalog, the usage ledger (meter), prepaid packs, postpaid tiers, settlement, bills,
freeze and arrears, the alert outbox, quote and plan."""

from facecloud.billing.service import Billing

__all__ = ["Billing"]
