"""The Redis store: every tenant's substrates and relationships in Redis structures
under one key prefix, shared by every server that points at the same Redis.

Writes that touch several keys are Lua scripts (``scripts.py``), each one atomic on the
server; invocation totals are a WATCH/MULTI transaction so their float sums are Python's.
Search reads the tenant's substrates in identity order and filters them in Python with
:func:`butterflyfx.core.matching.matches`: O(substrates scanned), fine for a registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from butterflyfx.core.matching import matches
from butterflyfx.core.store import SubstrateQuery, unavailable_on
from butterflyfx.kernel import InvocationStats, JSONValue, Substrate, parse_timestamp

from .codec import (
    hex_of,
    metadata_field,
    stamp,
    substrate_fields,
    substrate_from,
    tenant_base,
    text,
)
from .connection import (
    DEFAULT_URL,
    SEARCH_BATCH,
    RedisStoreError,
    masked_url,
    outage,
    page_args,
)
from .relationships import RelationshipMethods
from .scripts import SUBSTRATE_FIELDS
from .tenants import TenantMethods

STATS_FIELDS = ("n", "e", "ms", "last")


@unavailable_on(outage)
class RedisStore(RelationshipMethods, TenantMethods):
    """A :class:`~butterflyfx.core.store.SubstrateStore` in Redis; a Redis that is away
    raises :class:`~butterflyfx.core.store.StoreUnavailable` from every method."""

    shared_between_instances = True

    # -- substrates ---------------------------------------------------------------------
    async def put_substrate(self, tenant: str, substrate: Substrate) -> tuple[Substrate, bool]:
        return (await self.put_substrates(tenant, [substrate]))[0]

    async def put_substrates(
        self, tenant: str, substrates: Sequence[Substrate]
    ) -> list[tuple[Substrate, bool]]:
        args: list[str] = []
        for substrate in substrates:  # every one checked before the script writes any
            key = hex_of(substrate.identity)
            if key is None:
                raise ValueError(f"identity {substrate.identity} is not a 64-bit unsigned integer")
            args += [key, *substrate_fields(substrate)]
        if not args:
            return []
        flat = await self._run("put_substrates", tenant_base(self.prefix, tenant), *args)
        answers = []
        for index, substrate in enumerate(substrates):
            row = flat[index * 7 : index * 7 + 7]
            answers.append((substrate_from(substrate.identity, row[1:]), row[0] == 1))
        return answers

    async def get_substrate(self, tenant: str, identity: int) -> Substrate | None:
        key = hex_of(identity)
        if key is None:
            return None
        # One HMGET is atomic by itself: no MULTI/EXEC (a third of the CPU of a read).
        row = await self._redis().hmget(
            f"{tenant_base(self.prefix, tenant)}:s:{key}", SUBSTRATE_FIELDS
        )
        return substrate_from(identity, row) if row[0] is not None else None

    async def get_substrates(self, tenant: str, identities: Sequence[int]) -> dict[int, Substrate]:
        wanted = list(dict.fromkeys(i for i in identities if hex_of(i) is not None))
        if not wanted:
            return {}
        base = tenant_base(self.prefix, tenant)
        async with self._redis().pipeline(transaction=True) as pipe:
            for identity in wanted:
                pipe.hmget(f"{base}:s:{hex_of(identity)}", SUBSTRATE_FIELDS)
            rows = await pipe.execute()
        return {
            identity: substrate_from(identity, row)
            for identity, row in zip(wanted, rows, strict=True)
            if row[0] is not None
        }

    async def list_substrates(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        page = page_args(limit, after)
        if page is None:
            return []
        base = tenant_base(self.prefix, tenant)
        rows = await self._page(base, "substrates", "s", page[1], page[0], SUBSTRATE_FIELDS)
        return [substrate_from(int(key, 16), fields) for key, fields in rows]

    async def update_metadata(
        self, tenant: str, identity: int, metadata: Mapping[str, JSONValue], *, now: datetime
    ) -> Substrate | None:
        key = hex_of(identity)
        if key is None:
            return None
        base = tenant_base(self.prefix, tenant)
        row = await self._run("update_metadata", base, key, metadata_field(metadata), stamp(now))
        return None if row is None else substrate_from(identity, row)

    async def delete_substrate(self, tenant: str, identity: int) -> bool:
        key = hex_of(identity)
        if key is None:
            return False
        return bool(await self._run("delete_substrate", tenant_base(self.prefix, tenant), key))

    async def count_substrates(self, tenant: str) -> int:
        return int(await self._redis().zcard(f"{tenant_base(self.prefix, tenant)}:substrates"))

    # -- invocation totals --------------------------------------------------------------
    async def add_invocations(self, tenant: str, counts: Mapping[int, InvocationStats]) -> None:
        base = tenant_base(self.prefix, tenant)
        items = [(key, add) for identity, add in counts.items() if (key := hex_of(identity))]
        if not items:
            return
        watched = [f"{base}:{kind}:{key}" for key, _ in items for kind in ("s", "st")]

        async def write(pipe: Any) -> None:
            # Watching: the reads run now; MULTI queues the writes; EXEC fails (and this
            # runs again) if a watched key changed meanwhile, a delete included.
            present = [await pipe.exists(f"{base}:s:{key}") for key, _ in items]
            old = [await pipe.hmget(f"{base}:st:{key}", STATS_FIELDS) for key, _ in items]
            pipe.multi()
            for (key, add), there, row in zip(items, present, old, strict=True):
                if not there:
                    continue
                total = add if row[0] is None else _stats(row).plus(add)
                pipe.hset(
                    f"{base}:st:{key}",
                    mapping={
                        "n": total.count,
                        "e": total.errors,
                        "ms": repr(float(total.total_ms)),
                        "last": stamp(total.last_invoked_at),
                    },
                )
                pipe.sadd(f"{base}:invoked", key)

        await self._redis().transaction(write, *watched)

    async def invocation_stats(self, tenant: str, identity: int) -> InvocationStats | None:
        key = hex_of(identity)
        if key is None:
            return None
        base = tenant_base(self.prefix, tenant)
        row = await self._redis().hmget(f"{base}:st:{key}", STATS_FIELDS)
        return None if row[0] is None else _stats(row)

    async def invocation_totals(self, tenant: str) -> InvocationStats:
        base = tenant_base(self.prefix, tenant)
        members = await self._redis().smembers(f"{base}:invoked")
        keys = sorted(k.decode() if isinstance(k, bytes) else k for k in members)
        total = InvocationStats()
        async with self._redis().pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.hmget(f"{base}:st:{key}", STATS_FIELDS)
            rows = await pipe.execute() if keys else []
        for row in rows:
            if row[0] is not None:
                total = total.plus(_stats(row))
        return total

    # -- search -------------------------------------------------------------------------
    async def search_substrates(
        self, tenant: str, query: SubstrateQuery, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        page = page_args(limit, after)
        if page is None:
            return []
        bound = page[1]
        base = tenant_base(self.prefix, tenant)
        batch = max(limit, SEARCH_BATCH)
        kind = query.has_relationship_type
        found: list[Substrate] = []
        while True:
            rows = await self._page(base, "substrates", "s", bound, batch, SUBSTRATE_FIELDS)
            chosen = [
                s
                for s in (substrate_from(int(key, 16), fields) for key, fields in rows)
                if matches(query, s, lambda _type: True)  # the type is checked below
            ]
            if chosen and isinstance(kind, str):
                async with self._redis().pipeline(transaction=True) as pipe:
                    for s in chosen:
                        pipe.hexists(f"{base}:kinds:{hex_of(s.identity)}", text(kind))
                    has = await pipe.execute()
                chosen = [s for s, yes in zip(chosen, has, strict=True) if yes]
            for substrate in chosen:
                found.append(substrate)
                if len(found) == limit:
                    return found
            if len(rows) < batch:
                return found
            bound = f"({rows[-1][0]}"


def _stats(row: Sequence[Any]) -> InvocationStats:
    count, errors, total_ms, last = row
    moment = last.decode() if isinstance(last, bytes) else last
    return InvocationStats(
        int(count), int(errors), float(total_ms), parse_timestamp(moment or None)
    )


__all__ = ["DEFAULT_URL", "RedisStore", "RedisStoreError", "masked_url"]
