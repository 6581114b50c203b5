"""Typed relationships between substrates."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from .errors import InvalidRelationship
from .identity import MAX_IDENTITY, format_id, relationship_identity
from .json_values import JSONValue

RELATIONSHIP_TYPES: tuple[str, ...] = (
    "part_to_whole",
    "whole_to_part",
    "sibling",
    "containment",
    "attribute",
    "dependency",
    "adjacency",
    "aggregation",
    "boundary",
    "cycle",
    "recursion",
    "lineage",
    "embedding",
    "extraction",
    "orthogonal",
)
SELF_LOOP_TYPES = frozenset({"recursion", "cycle"})


def normalize_relationship_type(name: str, extra_types: Iterable[str] = ()) -> str:
    """The canonical (lower-case) type name; ``InvalidRelationship`` lists the known ones."""
    known = (*RELATIONSHIP_TYPES, *(t.lower() for t in extra_types))
    normalized = name.strip().lower() if isinstance(name, str) else ""
    if normalized not in known:
        raise InvalidRelationship(
            f"unknown relationship_type {name!r}; known types: {', '.join(known)}"
        )
    return normalized


@dataclass(frozen=True)
class Relationship:
    """``source -[relationship_type]-> target``; its identity depends on those three only."""

    source: int
    target: int
    relationship_type: str
    bidirectional: bool = False
    weight: float | None = None
    metadata: Mapping[str, JSONValue] = field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def identity(self) -> int:
        return relationship_identity(self.source, self.target, self.relationship_type)

    @property
    def relationship_id(self) -> str:
        return format_id(self.identity)

    @classmethod
    def create(
        cls,
        source: int,
        target: int,
        relationship_type: str,
        *,
        bidirectional: bool = False,
        weight: float | None = None,
        metadata: Mapping[str, JSONValue] | None = None,
        created_at: datetime | None = None,
        extra_types: Iterable[str] = (),
    ) -> Relationship:
        """Validate every field and build the relationship."""
        for end, value in (("source", source), ("target", target)):
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not 0 <= value <= MAX_IDENTITY
            ):
                raise InvalidRelationship(f"{end} must be a substrate identity")
        kind = normalize_relationship_type(relationship_type, extra_types)
        if source == target and kind not in SELF_LOOP_TYPES:
            raise InvalidRelationship(
                f"a substrate can relate to itself only by {' or '.join(sorted(SELF_LOOP_TYPES))}"
            )
        if weight is not None:
            if (
                isinstance(weight, bool)
                or not isinstance(weight, int | float)
                or not math.isfinite(weight)
            ):
                raise InvalidRelationship("weight must be a finite number or null")
            weight = float(weight)
        return cls(
            source, target, kind, bool(bidirectional), weight, dict(metadata or {}), created_at
        )
