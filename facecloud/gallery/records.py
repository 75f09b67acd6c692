"""What the gallery hands in and out: plain records, no database rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FaceInput:
    embedding: np.ndarray
    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0
    thumbnail: bytes | None = None  # a small JPEG of the face (thumbnails.py), kept with the face row
    crops: tuple[bytes, bytes] | None = None  # (SFace 112x112, ResNet 150x150) aligned crops, PNG


@dataclass(frozen=True)
class GroupInfo:
    group_id: str
    name: str
    ex_descriptions: list[str]
    tag: str
    face_model_version: str
    created_ms: int
    updated_ms: int


@dataclass(frozen=True)
class PersonInfo:
    person_id: str
    name: str
    gender: int
    face_ids: list[str]
    created_ms: int
    ex_descriptions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PersonGroupInfo:
    group_id: str
    ex_descriptions: list[str]


@dataclass(frozen=True)
class Candidate:
    person_pk: int
    person_id: str
    face_id: str  # "" for person-level search
    similarity: float
    group_id: str


@dataclass(frozen=True)
class SearchOutcome:
    """Per query: by group id, candidates best first (one per person). `total` = entries in the groups searched."""

    per_query: list[dict[str, list[Candidate]]]
    total: int
    face_model_version: str


@dataclass(frozen=True)
class PersonVectors:
    person_pk: int
    faces: np.ndarray  # [n, 128]
    feature: np.ndarray  # fused
    face_model_version: str
