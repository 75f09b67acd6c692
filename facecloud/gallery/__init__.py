"""The gallery: groups, persons and faces behind a repository over SQLAlchemy, and the vector index they
feed."""

from facecloud.gallery.service import FaceInput, Gallery, SearchOutcome

__all__ = ["FaceInput", "Gallery", "SearchOutcome"]
