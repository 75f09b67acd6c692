"""The gallery: groups, persons and faces behind a repository over SQLAlchemy, and the vector index they feed."""

from facecloud.gallery.records import FaceInput, SearchOutcome
from facecloud.gallery.service import Gallery

__all__ = ["FaceInput", "Gallery", "SearchOutcome"]
