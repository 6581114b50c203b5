"""``storage.memory``: substrates and relationships in dicts, for tests and throwaway runs.
Nothing survives.

No method awaits anything, so each runs to its end before another starts: every method
is one transaction, and no reader can see a relationship whose end is gone.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.core.matching import matches
from butterflyfx.core.store import Direction, MissingEnd, SubstrateQuery
from butterflyfx.kernel import InvocationStats, JSONValue, Relationship, Substrate

MAX_IDENTITY = 2**64 - 1


class IdentityOrder:
    """A set of identities read in ascending order; sorted again only after a change, so
    paging through an unchanging set costs one sort."""

    def __init__(self) -> None:
        self._members: set[int] = set()
        self._sorted: list[int] | None = []

    def add(self, identity: int) -> None:
        if identity not in self._members:
            self._members.add(identity)
            self._sorted = None

    def discard(self, identity: int) -> None:
        if identity in self._members:
            self._members.remove(identity)
            self._sorted = None

    def after(self, after: int | None) -> Iterator[int]:
        """The identities greater than ``after`` (all when None), ascending."""
        if self._sorted is None:
            self._sorted = sorted(self._members)
        ordered = self._sorted
        start = 0 if after is None else bisect.bisect_right(ordered, after)
        return (ordered[i] for i in range(start, len(ordered)))


@dataclass
class TenantData:
    substrates: dict[int, Substrate] = field(default_factory=dict)
    substrate_order: IdentityOrder = field(default_factory=IdentityOrder)
    stats: dict[int, InvocationStats] = field(default_factory=dict)
    relationships: dict[int, Relationship] = field(default_factory=dict)
    relationship_order: IdentityOrder = field(default_factory=IdentityOrder)
    # substrate identity -> identities of the relationships it is the source or target of
    touching: dict[int, set[int]] = field(default_factory=dict)
    types: Counter[str] = field(default_factory=Counter)

    def put_substrate(self, substrate: Substrate) -> tuple[Substrate, bool]:
        existing = self.substrates.get(substrate.identity)
        if existing is not None:
            return existing, False
        self.substrates[substrate.identity] = substrate
        self.substrate_order.add(substrate.identity)
        return substrate, True

    def check_ends(self, relationship: Relationship) -> None:
        """Raise :class:`MissingEnd` for the first end the tenant lacks."""
        if relationship.source not in self.substrates:
            raise MissingEnd("source", relationship.source)
        if relationship.target not in self.substrates:
            raise MissingEnd("target", relationship.target)

    def put_relationship(self, relationship: Relationship) -> tuple[Relationship, bool]:
        """Store it (its ends checked already) unless present."""
        identity = relationship.identity
        existing = self.relationships.get(identity)
        if existing is not None:
            return existing, False
        self.relationships[identity] = relationship
        self.relationship_order.add(identity)
        for end in (relationship.source, relationship.target):
            self.touching.setdefault(end, set()).add(identity)
        self.types[relationship.relationship_type] += 1
        return relationship, True

    def remove_relationship(self, identity: int) -> Relationship | None:
        relationship = self.relationships.pop(identity, None)
        if relationship is None:
            return None
        self.relationship_order.discard(identity)
        for end in (relationship.source, relationship.target):
            ends = self.touching.get(end)
            if ends is not None:
                ends.discard(identity)
                if not ends:
                    del self.touching[end]
        self.types[relationship.relationship_type] -= 1
        if not self.types[relationship.relationship_type]:
            del self.types[relationship.relationship_type]
        return relationship

    def has_type(self, substrate: int, relationship_type: str) -> bool:
        return any(
            self.relationships[identity].relationship_type == relationship_type
            for identity in self.touching.get(substrate, ())
        )


def _page(limit: int, after: int | None) -> tuple[int, int | None] | None:
    """(limit, after) to page with, or None when the page is empty whatever is stored."""
    if limit <= 0 or (after is not None and after >= MAX_IDENTITY):
        return None
    return limit, (after if after is not None and after >= 0 else None)


class MemoryStore:
    """A :class:`~butterflyfx.core.store.SubstrateStore` in process memory."""

    name = "memory"

    def __init__(self) -> None:
        self._tenants: dict[str, TenantData] = {}

    def _tenant(self, tenant: str) -> TenantData:
        data = self._tenants.get(tenant)
        if data is None:
            data = self._tenants[tenant] = TenantData()
        return data

    def _existing(self, tenant: str) -> TenantData:
        """The tenant's data, or an empty stand-in that is never kept (reads add nothing)."""
        return self._tenants.get(tenant) or TenantData()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- substrates ---------------------------------------------------------------------
    async def put_substrate(self, tenant: str, substrate: Substrate) -> tuple[Substrate, bool]:
        return self._tenant(tenant).put_substrate(substrate)

    async def put_substrates(
        self, tenant: str, substrates: Sequence[Substrate]
    ) -> list[tuple[Substrate, bool]]:
        data = self._tenant(tenant)
        return [data.put_substrate(substrate) for substrate in substrates]

    async def get_substrate(self, tenant: str, identity: int) -> Substrate | None:
        return self._existing(tenant).substrates.get(identity)

    async def get_substrates(self, tenant: str, identities: Sequence[int]) -> dict[int, Substrate]:
        substrates = self._existing(tenant).substrates
        return {i: substrates[i] for i in identities if i in substrates}

    async def list_substrates(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        return await self.search_substrates(tenant, SubstrateQuery(), limit=limit, after=after)

    async def update_metadata(
        self, tenant: str, identity: int, metadata: Mapping[str, JSONValue], *, now: datetime
    ) -> Substrate | None:
        data = self._existing(tenant)
        current = data.substrates.get(identity)
        if current is None:
            return None
        updated = replace(
            current, metadata=dict(metadata), updated_at=now, version=current.version + 1
        )
        data.substrates[identity] = updated
        return updated

    async def delete_substrate(self, tenant: str, identity: int) -> bool:
        data = self._existing(tenant)
        if data.substrates.pop(identity, None) is None:
            return False
        data.substrate_order.discard(identity)
        data.stats.pop(identity, None)
        for relationship in list(data.touching.get(identity, ())):
            data.remove_relationship(relationship)
        return True

    async def count_substrates(self, tenant: str) -> int:
        return len(self._existing(tenant).substrates)

    async def tenants(self) -> list[str]:
        """Every tenant with a substrate, sorted (the optional ``TenantListing``)."""
        return sorted(tenant for tenant, data in self._tenants.items() if data.substrates)

    # -- invocation totals --------------------------------------------------------------
    async def add_invocations(self, tenant: str, counts: Mapping[int, InvocationStats]) -> None:
        data = self._existing(tenant)
        for identity, add in counts.items():
            if identity not in data.substrates:
                continue
            old = data.stats.get(identity)
            data.stats[identity] = add if old is None else old.plus(add)

    async def invocation_stats(self, tenant: str, identity: int) -> InvocationStats | None:
        return self._existing(tenant).stats.get(identity)

    async def invocation_totals(self, tenant: str) -> InvocationStats:
        total = InvocationStats()
        for stats in self._existing(tenant).stats.values():
            total = total.plus(stats)
        return total

    # -- search -------------------------------------------------------------------------
    async def search_substrates(
        self, tenant: str, query: SubstrateQuery, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        page = _page(limit, after)
        if page is None:
            return []
        limit, after = page
        data = self._existing(tenant)
        found: list[Substrate] = []
        for identity in data.substrate_order.after(after):
            substrate = data.substrates[identity]
            if matches(query, substrate, partial(data.has_type, identity)):
                found.append(substrate)
                if len(found) == limit:
                    break
        return found

    # -- relationships ------------------------------------------------------------------
    async def put_relationship(
        self, tenant: str, relationship: Relationship
    ) -> tuple[Relationship, bool]:
        data = self._existing(tenant)
        data.check_ends(relationship)
        return data.put_relationship(relationship)

    async def put_relationships(
        self, tenant: str, relationships: Sequence[Relationship]
    ) -> list[tuple[Relationship, bool]]:
        data = self._existing(tenant)
        for relationship in relationships:  # all checked before any is stored
            data.check_ends(relationship)
        return [data.put_relationship(relationship) for relationship in relationships]

    async def get_relationship(self, tenant: str, identity: int) -> Relationship | None:
        return self._existing(tenant).relationships.get(identity)

    async def delete_relationship(self, tenant: str, identity: int) -> bool:
        return self._existing(tenant).remove_relationship(identity) is not None

    async def list_relationships(
        self,
        tenant: str,
        substrate: int,
        direction: Direction,
        *,
        types: Sequence[str] | None = None,
        limit: int,
        after: int | None = None,
    ) -> list[Relationship]:
        """See the contract; an empty ``types`` keeps none."""
        if direction not in ("outgoing", "incoming"):
            raise ValueError(f"direction must be 'outgoing' or 'incoming', not {direction!r}")
        page = _page(limit, after)
        if page is None:
            return []
        limit, after = page
        chosen = None
        if types is not None:  # a bare string is one name; what is not a string is no name
            chosen = {types} if isinstance(types, str) else {t for t in types if isinstance(t, str)}
        data = self._existing(tenant)
        found: list[Relationship] = []
        for identity in sorted(data.touching.get(substrate, ())):
            if after is not None and identity <= after:
                continue
            relationship = data.relationships[identity]
            near, far = relationship.source, relationship.target
            if direction == "incoming":
                near, far = far, near
            if near != substrate and not (far == substrate and relationship.bidirectional):
                continue
            if chosen is not None and relationship.relationship_type not in chosen:
                continue
            found.append(relationship)
            if len(found) == limit:
                break
        return found

    async def all_relationships(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Relationship]:
        page = _page(limit, after)
        if page is None:
            return []
        limit, after = page
        data = self._existing(tenant)
        found: list[Relationship] = []
        for identity in data.relationship_order.after(after):
            found.append(data.relationships[identity])
            if len(found) == limit:
                break
        return found

    async def count_relationships(self, tenant: str) -> Mapping[str, int]:
        return dict(self._existing(tenant).types)

    async def health(self) -> Mapping[str, Any]:
        return {"substrates": sum(len(data.substrates) for data in self._tenants.values())}


@hookimpl(trylast=True)
def butterflyfx_storage(ctx: Any) -> MemoryStore:
    return MemoryStore()
