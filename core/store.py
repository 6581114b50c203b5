"""The storage contract every backend implements, built-in or third-party.

A store keeps substrates per tenant, keyed by identity, and the invocation counts that
the Frequency dimension reports. Every method is async; a store is created by a
``butterflyfx_storage`` hook, opened once before serving and closed once after.
``butterflyfx.testing`` holds the conformance suite that proves a store keeps this
contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from butterflyfx.kernel import InvocationStats, JSONValue, Substrate


@runtime_checkable
class SubstrateStore(Protocol):
    """Where substrates live. Identities are 64-bit unsigned integers."""

    name: str

    async def open(self) -> None:
        """Connect, create the schema or migrate it; safe when several processes open at once."""

    async def close(self) -> None:
        """Release connections; after it returns every acknowledged write is durable."""

    async def put_substrate(self, tenant: str, substrate: Substrate) -> tuple[Substrate, bool]:
        """Store ``substrate`` unless the tenant already has its identity.

        Returns the stored substrate and True when it was created, or the one already
        stored (unchanged) and False. Once this returns, the write survives a crash.
        """
        ...

    async def get_substrate(self, tenant: str, identity: int) -> Substrate | None:
        """The tenant's substrate with this identity, or None."""
        ...

    async def list_substrates(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        """Up to ``limit`` substrates in ascending identity order, after ``after`` if given."""
        ...

    async def update_metadata(
        self, tenant: str, identity: int, metadata: Mapping[str, JSONValue], *, now: datetime
    ) -> Substrate | None:
        """Replace the metadata, bump ``version`` and set ``updated_at``; None if absent."""
        ...

    async def delete_substrate(self, tenant: str, identity: int) -> bool:
        """Delete the substrate and everything kept about it; False if it was absent."""
        ...

    async def count_substrates(self, tenant: str) -> int:
        """How many substrates the tenant has."""
        ...

    async def add_invocations(self, tenant: str, counts: Mapping[int, InvocationStats]) -> None:
        """Add these counts to each substrate's totals (absent substrates are skipped)."""
        ...

    async def invocation_stats(self, tenant: str, identity: int) -> InvocationStats | None:
        """The substrate's invocation totals, or None when it was never invoked."""
        ...

    async def health(self) -> Mapping[str, Any]:
        """A cheap check that the store answers; raises when it does not."""
        ...
