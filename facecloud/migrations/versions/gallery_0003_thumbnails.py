"""gallery: a small JPEG thumbnail per face (the console shows them)

Revision ID: gallery_0003_thumbnails
Revises: gallery_0002_scale
"""

import sqlalchemy as sa
from alembic import op

revision = "gallery_0003_thumbnails"
down_revision = "gallery_0002_scale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gallery_face_thumbnails",
        sa.Column(
            "face_pk",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            sa.ForeignKey("gallery_faces.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("jpeg", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gallery_face_thumbnails")
