"""The relationship service: what the API does with typed relationships, on any store."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from butterflyfx.kernel import (
    RELATIONSHIP_TYPES,
    SELF_LOOP_TYPES,
    InvalidRelationship,
    JSONValue,
    KernelError,
    Relationship,
    format_id,
    normalize_relationship_type,
)

from . import events
from .problems import Problem, ProblemError, invalid, not_found
from .store import Direction, MissingEnd, SubstrateStore
from .substrates import (
    MAX_BATCH,
    MAX_PAGE,
    BatchOutcome,
    EmitEvent,
    decode_cursor,
    encode_cursor,
    now,
    parse_substrate_id,
    refusal,
)

# Relationships one page of the tenant's whole list reads at most when ``type`` filters:
# past it the page ends early (its cursor goes on from there), so no request scans a
# whole tenant.
SCAN_BUDGET = 10 * MAX_PAGE


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


RelationshipOutcomes = list[BatchOutcome[Relationship]]  # one per item, in order


@dataclass(frozen=True)
class NewRelationship:
    """One item of :meth:`RelationshipService.create_many`: what ``create`` takes."""

    source_id: str
    target_id: str
    relationship_type: str
    bidirectional: bool = False
    weight: float | None = None
    metadata: Mapping[str, JSONValue] | None = None


def check_weight(weight: float | None) -> float | None:
    """A weight is a finite number, zero or more (paths add weights up), or None."""
    if weight is None:
        return None
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise invalid("weight", "weight must be a number or null")
    if not math.isfinite(weight) or weight < 0:
        raise invalid("weight", f"weight must be a finite number, zero or more, not {weight}")
    return float(weight)


def missing_end(missing: MissingEnd) -> ProblemError:
    """The 404 of a relationship whose end the tenant lacks, naming ``source_id`` or
    ``target_id``."""
    return not_found("substrate", format_id(missing.identity), f"{missing.end}_id")


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
        relationship = self.checked(
            NewRelationship(
                source_id, target_id, relationship_type, bidirectional, weight, metadata
            ),
            now(),
        )
        try:
            stored, created = await self.store.put_relationship(tenant, relationship)
        except MissingEnd as missing:
            raise missing_end(missing) from None
        if created:
            await self._created(tenant, stored)
        return stored, created

    def checked(self, item: NewRelationship, stamp: datetime) -> Relationship:
        """The relationship ``item`` describes; a 4xx :class:`ProblemError` naming the
        field when an id, the type, the weight or a self-loop is wrong."""
        source = parse_substrate_id(item.source_id, "source_id")
        target = parse_substrate_id(item.target_id, "target_id")
        kind = self.types.normalize(item.relationship_type, "relationship_type")
        weight = check_weight(item.weight)
        if source == target and kind not in SELF_LOOP_TYPES:
            raise invalid(
                "target_id",
                f"a substrate can relate to itself only by {' or '.join(sorted(SELF_LOOP_TYPES))}"
                f", not {kind}",
            )
        return Relationship.create(
            source, target, kind, bidirectional=item.bidirectional, weight=weight,
            metadata=item.metadata, created_at=stamp, extra_types=self.types.extra,
        )  # fmt: skip

    async def create_many(
        self, tenant: str, items: Sequence[NewRelationship]
    ) -> RelationshipOutcomes:
        """Check each item as :meth:`create` does and store those that pass in one
        ``put_relationships`` call (one transaction); one outcome per item, in order.

        An item with a bad id, type, weight or self-loop fails alone (4xx), and so does
        one whose end the tenant lacks (404 naming ``source_id`` or ``target_id``): the
        ends are looked up first, so the store's all-or-nothing :class:`MissingEnd` is
        only met when an end is deleted meanwhile, and then only that item fails. Each
        relationship created emits ``relationship.created``, in order."""
        if len(items) > MAX_BATCH:
            raise invalid("relationships", f"a batch holds at most {MAX_BATCH} items")
        outcomes: RelationshipOutcomes = [BatchOutcome() for _ in items]
        valid: list[tuple[int, Relationship]] = []
        stamp = now()
        for index, item in enumerate(items):
            try:
                valid.append((index, self.checked(item, stamp)))
            except (KernelError, ProblemError) as error:
                outcomes[index] = BatchOutcome(problem=refusal(error))
        ends = {end for _, r in valid for end in (r.source, r.target)}
        found = await self.store.get_substrates(tenant, sorted(ends)) if ends else {}
        ready: list[tuple[int, Relationship]] = []
        for index, relationship in valid:
            if relationship.source not in found:
                absent = MissingEnd("source", relationship.source)
            elif relationship.target not in found:
                absent = MissingEnd("target", relationship.target)
            else:
                ready.append((index, relationship))
                continue
            outcomes[index] = BatchOutcome(problem=missing_end(absent).problem)
        while ready:
            try:
                stored = await self.store.put_relationships(tenant, [r for _, r in ready])
            except MissingEnd as missing:  # an end deleted since the look-up: that item fails
                first = next(
                    position for position, (_, r) in enumerate(ready)
                    if (r.source if missing.end == "source" else r.target) == missing.identity
                )  # fmt: skip
                outcomes[ready.pop(first)[0]] = BatchOutcome(problem=missing_end(missing).problem)
                continue
            for (index, _), (relationship, created) in zip(ready, stored, strict=True):
                outcomes[index] = BatchOutcome(relationship, created)
                if created:
                    await self._created(tenant, relationship)
            break
        return outcomes

    async def _created(self, tenant: str, stored: Relationship) -> None:
        await self.emit(
            events.Event(
                events.RELATIONSHIP_CREATED, tenant, stored.relationship_id, event_data(stored)
            )
        )

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

    async def list_all(
        self,
        tenant: str,
        *,
        types: Sequence[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> RelationshipPage:
        """One page of every relationship of the tenant (each once, bidirectional or
        not), ascending relationship identity. ``types`` keep only those types; then a
        page reads at most :data:`SCAN_BUDGET` relationships, so it may hold fewer than
        ``limit`` (even none) while ``next_cursor`` still goes on."""
        if not 1 <= limit <= MAX_PAGE:
            raise invalid("limit", f"limit must be from 1 to {MAX_PAGE}", status=400)
        after = decode_cursor(cursor) if cursor else None
        kinds = self.types.normalize_all(types, "type", indexed=False)
        if kinds is None:
            items = await self.store.all_relationships(tenant, limit=limit + 1, after=after)
            more = len(items) > limit
            items = items[:limit]
            return RelationshipPage(
                items, encode_cursor(items[-1].identity) if more and items else None
            )
        wanted: list[Relationship] = []
        scanned = 0
        while True:
            chunk = await self.store.all_relationships(tenant, limit=MAX_PAGE, after=after)
            for relationship in chunk:
                if relationship.relationship_type in kinds:
                    if len(wanted) == limit:  # one more matches: this page is not the last
                        return RelationshipPage(wanted, encode_cursor(wanted[-1].identity))
                    wanted.append(relationship)
                after, scanned = relationship.identity, scanned + 1
            if len(chunk) < MAX_PAGE:
                return RelationshipPage(wanted, None)
            if scanned >= SCAN_BUDGET and after is not None:
                return RelationshipPage(wanted, encode_cursor(after))
