"""gallery: groups, persons, memberships, faces, change log, state

Revision ID: gallery_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "gallery_0001"
down_revision = None
branch_labels = ("gallery",)
depends_on = "accounts_0001"

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "gallery_groups",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False, index=True),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("tag", sa.String(40), nullable=False),
        sa.Column("ex_descriptions", sa.JSON, nullable=False),
        sa.Column("face_model_version", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("account_id", "group_id", name="uq_gallery_groups_account_group"),
        sa.UniqueConstraint("account_id", "name", name="uq_gallery_groups_account_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "gallery_persons",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False, index=True),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("gender", sa.Integer, nullable=False),
        sa.Column("feature", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("account_id", "person_id", name="uq_gallery_persons_account_person"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "gallery_memberships",
        sa.Column(
            "group_pk",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            sa.ForeignKey("gallery_groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "person_pk",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            sa.ForeignKey("gallery_persons.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
        sa.Column("ex_descriptions", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "gallery_faces",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("face_id", sa.String(32), nullable=False, unique=True),
        sa.Column(
            "person_pk",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            sa.ForeignKey("gallery_persons.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        sa.Column("x", sa.Integer, nullable=False),
        sa.Column("y", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "gallery_changes",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("group_pk", sa.BigInteger, nullable=False),
        sa.Column("item_pk", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "gallery_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "gallery_state",
        "gallery_changes",
        "gallery_faces",
        "gallery_memberships",
        "gallery_persons",
        "gallery_groups",
    ):
        op.drop_table(table)
