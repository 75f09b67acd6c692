"""gallery: per-account face counters (AccountFaceNumExceed without a scan)

Revision ID: gallery_0002_scale
Revises: gallery_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "gallery_0002_scale"
down_revision = "gallery_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gallery_account_counters",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True, autoincrement=False),
        sa.Column("faces", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO gallery_account_counters (account_id, faces) "
        "SELECT p.account_id, COUNT(f.id) FROM gallery_faces f JOIN gallery_persons p ON p.id = f.person_pk "
        "GROUP BY p.account_id"
    )


def downgrade() -> None:
    op.drop_table("gallery_account_counters")
