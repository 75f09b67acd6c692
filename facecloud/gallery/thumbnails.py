"""Per-face thumbnails: a small JPEG of the face crop, kept so the console can show a person's faces.

It is the only image data the gallery keeps (the embedding is not an image). Written in the same transaction as
its face row, deleted with it (ON DELETE CASCADE); FACECLOUD_FACE_THUMBNAIL_PX=0 stops writing them."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from sqlalchemy import ForeignKey, LargeBinary, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from facecloud.db import Base, BigId
from facecloud.gallery.models import FaceRow, PersonRow

JPEG_QUALITY = 80
MARGIN = 0.25  # of the face box, each side: the crop shows hair and chin, as a person would frame it


class ThumbnailRow(Base):
    __tablename__ = "gallery_face_thumbnails"

    face_pk: Mapped[int] = mapped_column(BigId, ForeignKey("gallery_faces.id", ondelete="CASCADE"), primary_key=True)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)


def face_thumbnail(bgr: np.ndarray, x: int, y: int, width: int, height: int, max_px: int) -> bytes | None:
    """A JPEG of the face box (plus a margin) at most max_px on its longer side; None when max_px is 0."""
    if max_px <= 0 or width <= 0 or height <= 0:
        return None
    pad_x, pad_y = int(width * MARGIN), int(height * MARGIN)
    rows, cols = bgr.shape[:2]
    top, bottom = max(0, y - pad_y), min(rows, y + height + pad_y)
    left, right = max(0, x - pad_x), min(cols, x + width + pad_x)
    if bottom <= top or right <= left:
        return None
    crop = Image.fromarray(np.ascontiguousarray(bgr[top:bottom, left:right, ::-1]))
    crop.thumbnail((max_px, max_px))
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def store_thumbnail(session: Session, face_pk: int, jpeg: bytes | None) -> None:
    if jpeg:
        session.add(ThumbnailRow(face_pk=face_pk, jpeg=jpeg))


def load_thumbnail(session: Session, account_id: int, face_id: str) -> bytes | None:
    """The thumbnail of one of the account's faces, or None (no such face, or none kept)."""
    return session.scalar(
        select(ThumbnailRow.jpeg)
        .join(FaceRow, FaceRow.id == ThumbnailRow.face_pk)
        .join(PersonRow, PersonRow.id == FaceRow.person_pk)
        .where(FaceRow.face_id == face_id, PersonRow.account_id == account_id)
    )
