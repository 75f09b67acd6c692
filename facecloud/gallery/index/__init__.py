"""Vector indexes of the gallery: an interface and two implementations (embedded FAISS, Milvus)."""

from facecloud.gallery.index.base import Change, Hit, VectorIndex

__all__ = ["Change", "Hit", "VectorIndex"]
