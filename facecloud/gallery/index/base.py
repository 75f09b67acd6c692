"""The vector index interface.

Entries are keyed by (kind, group, item): kind "face" (item = face pk) or "person" (item = person pk, the
fused
person feature). A face of a person in several groups is one entry per group, so a search is a search of
the groups
named, each on its own (no filter that could starve an approximate search), and a group is dropped in one
step.
The database is the source of truth: an index follows the change log (`Change`) and can always be rebuilt."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

KINDS = ("face", "person")


@dataclass(frozen=True)
class Hit:
    group_pk: int
    item_pk: int
    similarity: float  # cosine


@dataclass(frozen=True)
class Change:
    """One step of the change log, with the vector already resolved for puts (None: the row is gone, skip
    it)."""

    seq: int
    account_id: int
    op: str  # put / del / drop_group
    kind: str  # face / person ("" for drop_group)
    group_pk: int
    item_pk: int
    vector: np.ndarray | None = None


class VectorIndex(Protocol):
    """What the gallery needs from an index. `search` answers for each query the k most similar entries of
    each
    group (cosine), best first; group order is preserved."""

    @property
    def applied_seq(self) -> int: ...

    def apply(self, changes: Sequence[Change], up_to_seq: int) -> None: ...

    def reset(self, epoch: str) -> None: ...

    def load_entries(self, kind: str, account_id: int, group_pk: int, items: np.ndarray, vectors: np.ndarray) -> None:
        """Bulk load during a rebuild (after reset)."""
        ...

    def finish_rebuild(self, epoch: str, seq: int) -> None: ...

    def search(
        self, kind: str, account_id: int, group_pks: Sequence[int], queries: np.ndarray, k: int
    ) -> list[dict[int, list[Hit]]]: ...

    def count(self, kind: str, group_pks: Iterable[int]) -> int: ...

    def is_current(self, epoch: str) -> bool:
        """Whether what the index holds (memory, disk or server) belongs to this database epoch."""
        ...

    def save(self) -> None: ...

    def memory_bytes(self) -> int: ...

    def close(self) -> None: ...
