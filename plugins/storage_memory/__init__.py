"""``storage.memory``: substrates in a dict, for tests and throwaway runs. Nothing survives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from butterflyfx.core.hookspecs import hookimpl
from butterflyfx.kernel import InvocationStats, JSONValue, Substrate


class MemoryStore:
    """A :class:`~butterflyfx.core.store.SubstrateStore` in process memory."""

    name = "memory"

    def __init__(self) -> None:
        self._substrates: dict[tuple[str, int], Substrate] = {}
        self._stats: dict[tuple[str, int], InvocationStats] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def put_substrate(self, tenant: str, substrate: Substrate) -> tuple[Substrate, bool]:
        key = (tenant, substrate.identity)
        existing = self._substrates.get(key)
        if existing is not None:
            return existing, False
        self._substrates[key] = substrate
        return substrate, True

    async def get_substrate(self, tenant: str, identity: int) -> Substrate | None:
        return self._substrates.get((tenant, identity))

    async def list_substrates(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        chosen = sorted(
            identity
            for owner, identity in self._substrates
            if owner == tenant and (after is None or identity > after)
        )
        return [self._substrates[(tenant, identity)] for identity in chosen[:limit]]

    async def update_metadata(
        self, tenant: str, identity: int, metadata: Mapping[str, JSONValue], *, now: datetime
    ) -> Substrate | None:
        current = self._substrates.get((tenant, identity))
        if current is None:
            return None
        updated = replace(
            current, metadata=dict(metadata), updated_at=now, version=current.version + 1
        )
        self._substrates[(tenant, identity)] = updated
        return updated

    async def delete_substrate(self, tenant: str, identity: int) -> bool:
        self._stats.pop((tenant, identity), None)
        return self._substrates.pop((tenant, identity), None) is not None

    async def count_substrates(self, tenant: str) -> int:
        return sum(1 for owner, _ in self._substrates if owner == tenant)

    async def add_invocations(self, tenant: str, counts: Mapping[int, InvocationStats]) -> None:
        for identity, add in counts.items():
            key = (tenant, identity)
            if key not in self._substrates:
                continue
            old = self._stats.get(key)
            self._stats[key] = add if old is None else old.plus(add)

    async def invocation_stats(self, tenant: str, identity: int) -> InvocationStats | None:
        return self._stats.get((tenant, identity))

    async def health(self) -> Mapping[str, Any]:
        return {"substrates": len(self._substrates)}


@hookimpl(trylast=True)
def butterflyfx_storage(ctx: Any) -> MemoryStore:
    return MemoryStore()
