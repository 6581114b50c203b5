"""The relationship half of the Redis store."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from butterflyfx.core.store import Direction, MissingEnd
from butterflyfx.kernel import Relationship

from .codec import hex_of, relationship_doc, relationship_from, tenant_base, text
from .connection import SEARCH_BATCH, RedisConnection, page_args


class RelationshipMethods(RedisConnection):
    """Relationships: put with the end check, get, delete, list and count."""

    async def put_relationship(
        self, tenant: str, relationship: Relationship
    ) -> tuple[Relationship, bool]:
        return (await self.put_relationships(tenant, [relationship]))[0]

    async def put_relationships(
        self, tenant: str, relationships: Sequence[Relationship]
    ) -> list[tuple[Relationship, bool]]:
        """One script: raise for the first missing end, in order, before writing any."""
        args: list[str] = []
        for relationship in relationships:
            source = hex_of(relationship.source)
            if source is None:  # no substrate can have it (nor can it be hashed)
                raise MissingEnd("source", relationship.source)
            target = hex_of(relationship.target)
            if target is None:
                raise MissingEnd("target", relationship.target)
            key = hex_of(relationship.identity)
            assert key is not None  # a relationship identity is a 64-bit digest
            args += [
                key,
                source,
                target,
                text(relationship.relationship_type),
                relationship_doc(relationship),
            ]
        if not args:
            return []
        flat = await self._run("put_relationships", tenant_base(self.prefix, tenant), *args)
        if flat and flat[0] == b"missing":
            end = "source" if flat[1] == b"source" else "target"
            failed = relationships[int(flat[2])]
            raise MissingEnd(end, failed.source if end == "source" else failed.target)
        return [(relationship_from(flat[i + 1]), flat[i] == 1) for i in range(0, len(flat), 2)]

    async def get_relationship(self, tenant: str, identity: int) -> Relationship | None:
        key = hex_of(identity)
        if key is None:
            return None
        doc = await self._redis().hget(f"{tenant_base(self.prefix, tenant)}:r:{key}", "doc")
        return None if doc is None else relationship_from(doc)

    async def delete_relationship(self, tenant: str, identity: int) -> bool:
        key = hex_of(identity)
        if key is None:
            return False
        base = tenant_base(self.prefix, tenant)
        return bool(await self._run("delete_relationship", base, key))

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
        page = page_args(limit, after)
        key = hex_of(substrate)
        if page is None or key is None:
            return []
        chosen = None
        if types is not None:  # a bare string is one name; what is not a string is no name
            chosen = {types} if isinstance(types, str) else {t for t in types if isinstance(t, str)}
            if not chosen:
                return []
        base = tenant_base(self.prefix, tenant)
        bound, batch = page[1], max(limit, SEARCH_BATCH)
        found: list[Relationship] = []
        while True:
            rows = await self._page(base, f"touch:{key}", "r", bound, batch, ("doc",))
            for _, (doc,) in rows:
                relationship = relationship_from(doc)
                near, far = relationship.source, relationship.target
                if direction == "incoming":
                    near, far = far, near
                if near != substrate and not (far == substrate and relationship.bidirectional):
                    continue
                if chosen is not None and relationship.relationship_type not in chosen:
                    continue
                found.append(relationship)
                if len(found) == limit:
                    return found
            if len(rows) < batch:
                return found
            bound = f"({rows[-1][0]}"

    async def all_relationships(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Relationship]:
        page = page_args(limit, after)
        if page is None:
            return []
        base = tenant_base(self.prefix, tenant)
        rows = await self._page(base, "relationships", "r", page[1], page[0], ("doc",))
        return [relationship_from(doc) for _, (doc,) in rows]

    async def count_relationships(self, tenant: str) -> Mapping[str, int]:
        counts = await self._redis().hgetall(f"{tenant_base(self.prefix, tenant)}:types")
        return {json.loads(kind): int(n) for kind, n in counts.items() if int(n) > 0}
