"""The relationship service: what the API does with typed relationships, on any store."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from butterflyfx.kernel import (
    RELATIONSHIP_TYPES,
    SELF_LOOP_TYPES,
    InvalidRelationship,
    JSONValue,
    Relationship,
    format_id,
    normalize_relationship_type,
)

from . import events
from .problems import Problem, ProblemError, invalid, not_found
from .store import Direction, MissingEnd, SubstrateStore
from .substrates import MAX_PAGE, EmitEvent, decode_cursor, encode_cursor, now, parse_substrate_id


@dataclass(frozen=True)
class RelationshipPage:
    items: list[Relationship]
    next_cursor: str | None


class RelationshipTypes:
    """The kernel's 15 types and those the config adds, matched without regard to case."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        known = list(RELATIONSHIP_TYPES)
        for name in extra:
            name = name.strip().lower()
            if name and name not in known:
                known.append(name)
        self.known: tuple[str, ...] = tuple(known)
        self.extra: tuple[str, ...] = self.known[len(RELATIONSHIP_TYPES) :]

    def normalize(self, name: str, field_name: str) -> str:
        """The canonical name; an unknown one is a 422 naming ``field_name`` and listing
        the known types."""
        try:
            return normalize_relationship_type(name, self.extra)
        except InvalidRelationship:
            shown = name[:64] if isinstance(name, str) else name
            raise ProblemError(
                Problem(
                    422, "unknown-relationship-type", "Unknown relationship type",
                    f"unknown relationship type {shown!r} in {field_name}; known types: "
                    f"{', '.join(self.known)}",
                    {"field": field_name, "known_types": list(self.known)},
                )
            ) from None  # fmt: skip

    def normalize_all(
        self, names: Sequence[str] | None, field_name: str, *, indexed: bool = True
    ) -> tuple[str, ...] | None:
        """Each name normalised, duplicates dropped; None or no names means every type.
        An unknown one blames ``field_name[i]`` (a JSON array) or ``field_name`` (a
        comma-separated query parameter, ``indexed=False``)."""
        if not names:
            return None
        found: list[str] = []
        for index, name in enumerate(names):
            kind = self.normalize(name, f"{field_name}[{index}]" if indexed else field_name)
            if kind not in found:
                found.append(kind)
        return tuple(found)


def check_weight(weight: float | None) -> float | None:
    """A weight is a finite number, zero or more (paths add weights up), or None."""
    if weight is None:
        return None
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise invalid("weight", "weight must be a number or null")
    if not math.isfinite(weight) or weight < 0:
        raise invalid("weight", f"weight must be a finite number, zero or more, not {weight}")
    return float(weight)


def event_data(relationship: Relationship) -> dict[str, JSONValue]:
    return {
        "source": relationship.source,
        "target": relationship.target,
        "relationship_type": relationship.relationship_type,
        "bidirectional": relationship.bidirectional,
        "weight": relationship.weight,
    }


class RelationshipService:
    """Create, read, delete and list a tenant's relationships between its substrates."""

    def __init__(
        self, store: SubstrateStore, emit: EmitEvent, *, types: RelationshipTypes | None = None
    ) -> None:
        self.store = store
        self.emit = emit
        self.types = types or RelationshipTypes()

    async def create(
        self,
        tenant: str,
        source_id: str,
        target_id: str,
        relationship_type: str,
        *,
        bidirectional: bool = False,
        weight: float | None = None,
        metadata: Mapping[str, JSONValue] | None = None,
    ) -> tuple[Relationship, bool]:
        """Relate two existing substrates; an existing relationship (same ends and type) is
        returned unchanged with False."""
        source = parse_substrate_id(source_id, "source_id")
        target = parse_substrate_id(target_id, "target_id")
        kind = self.types.normalize(relationship_type, "relationship_type")
        weight = check_weight(weight)
        if source == target and kind not in SELF_LOOP_TYPES:
            raise invalid(
                "target_id",
                f"a substrate can relate to itself only by {' or '.join(sorted(SELF_LOOP_TYPES))}"
                f", not {kind}",
            )
        relationship = Relationship.create(
            source, target, kind, bidirectional=bidirectional, weight=weight,
            metadata=metadata, created_at=now(), extra_types=self.types.extra,
        )  # fmt: skip
        try:
            stored, created = await self.store.put_relationship(tenant, relationship)
        except MissingEnd as missing:
            raise not_found("substrate", format_id(missing.identity), f"{missing.end}_id") from None
        if created:
            await self.emit(
                events.Event(
                    events.RELATIONSHIP_CREATED, tenant, stored.relationship_id, event_data(stored)
                )
            )
        return stored, created

    async def get(self, tenant: str, relationship_id: str) -> Relationship:
        identity = parse_substrate_id(relationship_id, "relationship_id")
        found = await self.store.get_relationship(tenant, identity)
        if found is None:
            raise not_found("relationship", format_id(identity), "relationship_id")
        return found

    async def delete(self, tenant: str, relationship_id: str) -> None:
        found = await self.get(tenant, relationship_id)
        if not await self.store.delete_relationship(tenant, found.identity):
            raise not_found("relationship", found.relationship_id, "relationship_id")
        await self.emit(
            events.Event(
                events.RELATIONSHIP_DELETED, tenant, found.relationship_id, event_data(found)
            )
        )

    async def list(
        self,
        tenant: str,
        substrate_id: str,
        direction: Direction,
        *,
        types: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RelationshipPage:
        """One page of the substrate's relationships in ``direction`` (a bidirectional one is
        in both), ascending relationship identity; 404 when the substrate does not exist.
        ``types`` come from the ``type`` query parameter, which an unknown one blames."""
        identity = parse_substrate_id(substrate_id)
        if not 1 <= limit <= MAX_PAGE:
            raise invalid("limit", f"limit must be from 1 to {MAX_PAGE}", status=400)
        after = decode_cursor(cursor) if cursor else None
        kinds = self.types.normalize_all(types, "type", indexed=False)
        if await self.store.get_substrate(tenant, identity) is None:
            raise not_found("substrate", format_id(identity), "substrate_id")
        items = await self.store.list_relationships(
            tenant, identity, direction, types=kinds, limit=limit + 1, after=after
        )
        more = len(items) > limit
        items = items[:limit]
        return RelationshipPage(
            items, encode_cursor(items[-1].identity) if more and items else None
        )
