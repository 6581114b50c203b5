"""What the store keeps in memory: every tenant's substrates and relationships, indexed.

The index is rebuilt from the journal when the store opens and kept up to date by the same
function, :meth:`Tenants.apply`, for each record written since (by this process or by
another on the same file). So what one process holds is always what replaying the file
gives, and nothing else.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from butterflyfx.kernel import InvocationStats, Relationship, Substrate

from .records import (
    Record,
    relationship_from,
    relationship_item,
    stats_from,
    stats_item,
    substrate_from,
    substrate_item,
)


class Ascending:
    """A set of identities read in ascending order, sorted again only after a change."""

    def __init__(self) -> None:
        self._members: set[int] = set()
        self._sorted: list[int] | None = []

    def add(self, identity: int) -> None:
        if identity not in self._members:
            self._members.add(identity)
            self._sorted = None

    def discard(self, identity: int) -> None:
        if identity in self._members:
            self._members.discard(identity)
            self._sorted = None

    def after(self, after: int | None) -> Iterator[int]:
        """The identities greater than ``after`` (every one when None), ascending."""
        if self._sorted is None:
            self._sorted = sorted(self._members)
        ordered = self._sorted
        start = 0 if after is None else bisect.bisect_right(ordered, after)
        return (ordered[i] for i in range(start, len(ordered)))


@dataclass
class Tenant:
    """One tenant's data. ``touching`` maps a substrate to the relationships it is an end of."""

    substrates: dict[int, Substrate] = field(default_factory=dict)
    substrate_order: Ascending = field(default_factory=Ascending)
    stats: dict[int, InvocationStats] = field(default_factory=dict)
    relationships: dict[int, Relationship] = field(default_factory=dict)
    relationship_order: Ascending = field(default_factory=Ascending)
    touching: dict[int, set[int]] = field(default_factory=dict)
    types: Counter[str] = field(default_factory=Counter)

    def has_type(self, substrate: int, relationship_type: str) -> bool:
        return any(
            self.relationships[identity].relationship_type == relationship_type
            for identity in self.touching.get(substrate, ())
        )

    def add_substrate(self, substrate: Substrate) -> None:
        if substrate.identity not in self.substrates:
            self.substrates[substrate.identity] = substrate
            self.substrate_order.add(substrate.identity)

    def remove_substrate(self, identity: int) -> None:
        if self.substrates.pop(identity, None) is None:
            return
        self.substrate_order.discard(identity)
        self.stats.pop(identity, None)
        for relationship in list(self.touching.get(identity, ())):
            self.remove_relationship(relationship)

    def add_relationship(self, relationship: Relationship) -> None:
        identity = relationship.identity
        if identity in self.relationships:
            return
        self.relationships[identity] = relationship
        self.relationship_order.add(identity)
        for end in (relationship.source, relationship.target):
            self.touching.setdefault(end, set()).add(identity)
        self.types[relationship.relationship_type] += 1

    def remove_relationship(self, identity: int) -> None:
        relationship = self.relationships.pop(identity, None)
        if relationship is None:
            return
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


class Tenants:
    """Every tenant's :class:`Tenant`, made as records name them."""

    def __init__(self) -> None:
        self._tenants: dict[str, Tenant] = {}

    def __iter__(self) -> Iterator[tuple[str, Tenant]]:
        return iter(sorted(self._tenants.items()))

    def get(self, tenant: str) -> Tenant:
        """The tenant's data, or an empty one that is not kept (reading adds no tenant)."""
        return self._tenants.get(tenant) or Tenant()

    def apply(self, record: Record) -> None:
        """Change the index as the record says; the one way anything in it changes."""
        data = self._tenants.get(record["tenant"])
        if data is None:
            data = self._tenants[record["tenant"]] = Tenant()
        op = record["op"]
        if op == "substrates":
            for item in record["items"]:
                data.add_substrate(substrate_from(item))
        elif op == "replace":
            substrate = substrate_from(record["item"])
            if substrate.identity in data.substrates:
                data.substrates[substrate.identity] = substrate
        elif op == "delete":
            data.remove_substrate(record["id"])
        elif op == "invocations":
            for identity, item in record["counts"]:
                if identity in data.substrates:
                    old = data.stats.get(identity)
                    add = stats_from(item)
                    data.stats[identity] = add if old is None else old.plus(add)
        elif op == "relationships":
            for item in record["items"]:
                data.add_relationship(relationship_from(item))
        elif op == "unrelate":
            data.remove_relationship(record["id"])
        else:
            raise ValueError(f"unknown operation {op!r}")

    def snapshot(self) -> Iterator[Record]:
        """Records that rebuild exactly this index from nothing, up to 500 items a line."""
        chunk = 500
        for tenant, data in self:
            substrates = [data.substrates[i] for i in data.substrate_order.after(None)]
            for start in range(0, len(substrates), chunk):
                items = [substrate_item(s) for s in substrates[start : start + chunk]]
                yield {"op": "substrates", "tenant": tenant, "items": items}
            counts = sorted(data.stats.items())
            for start in range(0, len(counts), chunk):
                pairs = [[i, stats_item(s)] for i, s in counts[start : start + chunk]]
                yield {"op": "invocations", "tenant": tenant, "counts": pairs}
            relationships = [data.relationships[i] for i in data.relationship_order.after(None)]
            for start in range(0, len(relationships), chunk):
                items = [relationship_item(r) for r in relationships[start : start + chunk]]
                yield {"op": "relationships", "tenant": tenant, "items": items}
