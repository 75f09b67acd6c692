"""gallery: aligned crops per face, vectors per face model version, upgrade jobs

Until now both FaceModelVersions were served by SFace: the faces of "3.0" groups hold SFace vectors, which is
"2.0" since issue 14, so those groups are relabelled "2.0" (their vectors are what 2.0 computes); they can be
upgraded once their faces are enrolled again with crops (faces without crops are reported as failed).

Revision ID: gallery_0004_model_versions
Revises: gallery_0003_thumbnails
"""

import sqlalchemy as sa
from alembic import op

revision = "gallery_0004_model_versions"
down_revision = "gallery_0003_thumbnails"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "gallery_face_crops",
        sa.Column("face_pk", BigId, sa.ForeignKey("gallery_faces.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("sface_png", sa.LargeBinary, nullable=False),
        sa.Column("resnet_png", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "gallery_face_vectors",
        sa.Column("face_pk", BigId, sa.ForeignKey("gallery_faces.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.String(8), primary_key=True),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "gallery_version_jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), nullable=False, unique=True),
        sa.Column("account_id", sa.Integer, nullable=False, index=True),
        sa.Column("group_pk", sa.BigInteger, nullable=False, index=True),
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("from_version", sa.String(8), nullable=False),
        sa.Column("to_version", sa.String(8), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("failed_face_ids", sa.JSON, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sqlite_autoincrement=True,
    )
    op.execute("UPDATE gallery_groups SET face_model_version = '2.0' WHERE face_model_version = '3.0'")


def downgrade() -> None:
    op.drop_table("gallery_version_jobs")
    op.drop_table("gallery_face_vectors")
    op.drop_table("gallery_face_crops")
