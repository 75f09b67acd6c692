"""The gallery domain: groups, persons (many groups each, per-group descriptions), faces and their embeddings.

Every change is one database transaction that also appends to the change log (gallery_changes); the vector index
is derived from the database and catches up from that log. `Gallery` is the one object the rest of facecloud
holds; it is made of one part per job, each in its own module:
  writes.py      the write transaction: the account's lock first, its change-log rows last, the commit gate
  index_sync.py  the vector index: sync from the change log, rebuild, maintenance, log compaction, report
  groups.py      groups
  persons.py     persons and their group memberships
  faces.py       faces, their crops and thumbnails, and the person's fused feature
  search.py      search, and the person details it returns
and the helpers they share: lookups.py (rows of an account, not-found errors), limits.py (Tencent's limits,
capacity checks), records.py (the records handed out)."""

from __future__ import annotations

import threading

from facecloud.db import Database
from facecloud.gallery.faces import Faces
from facecloud.gallery.groups import Groups
from facecloud.gallery.index.base import VectorIndex
from facecloud.gallery.index_sync import index_from_settings
from facecloud.gallery.persons import Persons
from facecloud.gallery.search import Search


class Gallery(Groups, Persons, Faces, Search):
    def __init__(self, db: Database, settings, index: VectorIndex | None = None) -> None:  # type: ignore[no-untyped-def]
        self.db = db
        self.settings = settings
        self.index = index if index is not None else index_from_settings(settings)
        self._sync_lock = threading.Lock()
        self._ready = False
        self._closed = False
        self.epoch = self._ensure_state()
        self.sync()  # load, catch up or rebuild the index before the first request
