"""billing: usage ledger, counters, packs, wallets, bills, alert outbox

Revision ID: billing_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "billing_0001"
down_revision = None
branch_labels = ("billing",)
depends_on = "accounts_0001"

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def _counters() -> list[sa.Column]:
    return [
        sa.Column("calls", sa.BigInteger, nullable=False),
        sa.Column("free_calls", sa.BigInteger, nullable=False),
        sa.Column("pack_calls", sa.BigInteger, nullable=False),
        sa.Column("postpaid_calls", sa.BigInteger, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "billing_usage_entries",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("service", sa.String(32), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("pack_id", sa.Integer, nullable=True),
    )
    op.create_index("ix_billing_usage_entries_account_month", "billing_usage_entries", ["account_id", "month"])
    op.create_table(
        "billing_usage_monthly",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("service", sa.String(32), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        *_counters(),
    )
    op.create_table(
        "billing_usage_daily",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("service", sa.String(32), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("month", sa.String(7), nullable=False),
        *_counters(),
    )
    op.create_index("ix_billing_usage_daily_account_month", "billing_usage_daily", ["account_id", "month"])
    op.create_table(
        "billing_packs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False, index=True),
        sa.Column("service", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("purchased_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("remaining", sa.BigInteger, nullable=False),
        sa.Column("low_alerted", sa.Boolean, nullable=False),
        sa.Column("exhausted_alerted", sa.Boolean, nullable=False),
    )
    op.create_table(
        "billing_wallets",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("frozen", sa.BigInteger, nullable=False),
        sa.Column("freeze_target", sa.BigInteger, nullable=False),
        sa.Column("in_arrears", sa.Boolean, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_table(
        "billing_wallet_entries",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("frozen_change", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_table(
        "billing_bills",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("issued_at", TIME, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("freeze_released", sa.BigInteger, nullable=False),
        sa.Column("freeze_target", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("in_arrears", sa.Boolean, nullable=False),
        sa.UniqueConstraint("account_id", "month", name="uq_billing_bills_account_month"),
    )
    op.create_table(
        "billing_bill_lines",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("bill_id", sa.Integer, sa.ForeignKey("billing_bills.id"), nullable=False, index=True),
        sa.Column("service", sa.String(32), nullable=False),
        sa.Column("calls", sa.BigInteger, nullable=False),
        sa.Column("free_calls", sa.BigInteger, nullable=False),
        sa.Column("pack_calls", sa.BigInteger, nullable=False),
        sa.Column("postpaid_calls", sa.BigInteger, nullable=False),
        sa.Column("tier", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "billing_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("pack_id", sa.Integer, sa.ForeignKey("billing_packs.id"), nullable=True),
        sa.Column("service", sa.String(32), nullable=False),
        sa.Column("message", sa.String(512), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("delivered_at", TIME, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(256), nullable=False),
        sa.UniqueConstraint("pack_id", "kind", name="uq_billing_alerts_pack_kind"),
    )


def downgrade() -> None:
    for table in (
        "billing_alerts",
        "billing_bill_lines",
        "billing_bills",
        "billing_wallet_entries",
        "billing_wallets",
        "billing_packs",
        "billing_usage_daily",
        "billing_usage_monthly",
        "billing_usage_entries",
    ):
        op.drop_table(table)
