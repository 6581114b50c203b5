"""``JournalStore``: a :class:`~butterflyfx.core.store.SubstrateStore` in one journal file.

Every operation runs on one thread of the store's own, so the server's event loop never
waits for the lock or for ``fsync``, and the store's operations happen one at a time in
this process: each is one transaction. Across processes the journal's lock does the same
(see :mod:`.journal`). A write checks what it must against the data as of the moment it
holds the lock, appends one record (a batch is one record: whole or not at all), and
only then answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from butterflyfx.core.matching import matches
from butterflyfx.core.store import Direction, MissingEnd, SubstrateQuery
from butterflyfx.kernel import InvocationStats, JSONValue, Relationship, Substrate

from .journal import Journal, JournalError
from .records import relationship_item, stats_item, substrate_item
from .tenants import Tenant, Tenants

T = TypeVar("T")
MAX_IDENTITY = 2**64 - 1


def _page(limit: int, after: int | None) -> tuple[int, int | None] | None:
    """(limit, after) to page with, or None when the page is empty whatever is stored."""
    if limit <= 0 or (after is not None and after >= MAX_IDENTITY):
        return None
    return limit, (after if after is not None and after >= 0 else None)


def _check_identity(identity: int) -> None:
    if not isinstance(identity, int) or not 0 <= identity <= MAX_IDENTITY:
        raise ValueError(f"identity {identity!r} is not a 64-bit unsigned integer")


class JournalStore:
    """Substrates and relationships of every tenant, in the journal at ``path``.

    ``fsync=False`` acknowledges a write once the operating system has it: it survives a
    crash of the server, not of the machine. ``compact_at_close`` rewrites the journal as
    its live data when the store closes, if that makes it shorter.
    """

    name = "example-journal"

    def __init__(self, path: Path, *, fsync: bool = True, compact_at_close: bool = True) -> None:
        self.path = Path(path)
        self.compact_at_close = compact_at_close
        self._tenants = Tenants()
        self._journal = Journal(self.path, self._apply, self._reset, fsync=fsync)
        self._thread: ThreadPoolExecutor | None = None

    def _apply(self, record: dict[str, Any]) -> None:
        self._tenants.apply(record)

    def _reset(self) -> None:
        self._tenants = Tenants()

    async def _run(self, exclusive: bool, work: Callable[[], T]) -> T:
        """``work()`` on the store's thread, under the journal's lock, caught up."""
        if self._thread is None:
            raise JournalError(f"the store on {str(self.path)!r} is not open")

        def locked() -> T:
            with self._journal.locked(exclusive=exclusive):
                return work()

        return await asyncio.get_running_loop().run_in_executor(self._thread, locked)

    async def _read(self, work: Callable[[], T]) -> T:
        return await self._run(False, work)

    async def _write(self, work: Callable[[], T]) -> T:
        return await self._run(True, work)

    # -- opening and closing --------------------------------------------------------------
    async def open(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="storage.example")
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._journal.open)
        except BaseException:
            self._thread.shutdown()
            self._thread = None
            raise

    async def close(self) -> None:
        if self._thread is None:
            return
        snapshot = self._tenants_snapshot if self.compact_at_close else None
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._thread, partial(self._journal.close, snapshot)
            )
        finally:
            self._thread.shutdown()
            self._thread = None

    def _tenants_snapshot(self) -> Any:
        return self._tenants.snapshot()

    # -- substrates ---------------------------------------------------------------------
    async def put_substrate(self, tenant: str, substrate: Substrate) -> tuple[Substrate, bool]:
        (answer,) = await self.put_substrates(tenant, [substrate])
        return answer

    async def put_substrates(
        self, tenant: str, substrates: Sequence[Substrate]
    ) -> list[tuple[Substrate, bool]]:
        for substrate in substrates:
            _check_identity(substrate.identity)

        def work() -> list[tuple[Substrate, bool]]:
            stored = self._tenants.get(tenant).substrates
            new: dict[int, Substrate] = {}
            answers: list[tuple[Substrate, bool]] = []
            for substrate in substrates:
                existing = stored.get(substrate.identity) or new.get(substrate.identity)
                if existing is not None:
                    answers.append((existing, False))
                else:
                    new[substrate.identity] = substrate
                    answers.append((substrate, True))
            if new:
                items = [substrate_item(s) for s in new.values()]
                self._journal.append({"op": "substrates", "tenant": tenant, "items": items})
            return answers

        return await self._write(work)

    async def get_substrate(self, tenant: str, identity: int) -> Substrate | None:
        return await self._read(lambda: self._tenants.get(tenant).substrates.get(identity))

    async def get_substrates(self, tenant: str, identities: Sequence[int]) -> dict[int, Substrate]:
        def work() -> dict[int, Substrate]:
            stored = self._tenants.get(tenant).substrates
            return {i: stored[i] for i in identities if i in stored}

        return await self._read(work)

    async def list_substrates(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        return await self.search_substrates(tenant, SubstrateQuery(), limit=limit, after=after)

    async def update_metadata(
        self, tenant: str, identity: int, metadata: Mapping[str, JSONValue], *, now: datetime
    ) -> Substrate | None:
        def work() -> Substrate | None:
            current = self._tenants.get(tenant).substrates.get(identity)
            if current is None:
                return None
            updated = replace(
                current, metadata=dict(metadata), updated_at=now, version=current.version + 1
            )
            self._journal.append(
                {"op": "replace", "tenant": tenant, "item": substrate_item(updated)}
            )
            return updated

        return await self._write(work)

    async def delete_substrate(self, tenant: str, identity: int) -> bool:
        def work() -> bool:
            if identity not in self._tenants.get(tenant).substrates:
                return False
            self._journal.append({"op": "delete", "tenant": tenant, "id": identity})
            return True

        return await self._write(work)

    async def count_substrates(self, tenant: str) -> int:
        return await self._read(lambda: len(self._tenants.get(tenant).substrates))

    # -- invocation totals --------------------------------------------------------------
    async def add_invocations(self, tenant: str, counts: Mapping[int, InvocationStats]) -> None:
        def work() -> None:
            stored = self._tenants.get(tenant).substrates
            pairs = [[i, stats_item(add)] for i, add in counts.items() if i in stored]
            if pairs:
                self._journal.append({"op": "invocations", "tenant": tenant, "counts": pairs})

        await self._write(work)

    async def invocation_stats(self, tenant: str, identity: int) -> InvocationStats | None:
        return await self._read(lambda: self._tenants.get(tenant).stats.get(identity))

    async def invocation_totals(self, tenant: str) -> InvocationStats:
        def work() -> InvocationStats:
            total = InvocationStats()
            for stats in self._tenants.get(tenant).stats.values():
                total = total.plus(stats)
            return total

        return await self._read(work)

    # -- search -------------------------------------------------------------------------
    async def search_substrates(
        self, tenant: str, query: SubstrateQuery, *, limit: int, after: int | None = None
    ) -> list[Substrate]:
        page = _page(limit, after)
        if page is None:
            return []
        most, start = page

        def work() -> list[Substrate]:
            data = self._tenants.get(tenant)
            found: list[Substrate] = []
            for identity in data.substrate_order.after(start):
                substrate = data.substrates[identity]
                if matches(query, substrate, partial(data.has_type, identity)):
                    found.append(substrate)
                    if len(found) == most:
                        break
            return found

        return await self._read(work)

    # -- relationships ------------------------------------------------------------------
    async def put_relationship(
        self, tenant: str, relationship: Relationship
    ) -> tuple[Relationship, bool]:
        (answer,) = await self.put_relationships(tenant, [relationship])
        return answer

    async def put_relationships(
        self, tenant: str, relationships: Sequence[Relationship]
    ) -> list[tuple[Relationship, bool]]:
        def work() -> list[tuple[Relationship, bool]]:
            data = self._tenants.get(tenant)
            for relationship in relationships:  # every end checked before anything is written
                _check_ends(data, relationship)
            new: dict[int, Relationship] = {}
            answers: list[tuple[Relationship, bool]] = []
            for relationship in relationships:
                identity = relationship.identity
                existing = data.relationships.get(identity) or new.get(identity)
                if existing is not None:
                    answers.append((existing, False))
                else:
                    new[identity] = relationship
                    answers.append((relationship, True))
            if new:
                items = [relationship_item(r) for r in new.values()]
                self._journal.append({"op": "relationships", "tenant": tenant, "items": items})
            return answers

        return await self._write(work)

    async def get_relationship(self, tenant: str, identity: int) -> Relationship | None:
        return await self._read(lambda: self._tenants.get(tenant).relationships.get(identity))

    async def delete_relationship(self, tenant: str, identity: int) -> bool:
        def work() -> bool:
            if identity not in self._tenants.get(tenant).relationships:
                return False
            self._journal.append({"op": "unrelate", "tenant": tenant, "id": identity})
            return True

        return await self._write(work)

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
        most, start = page
        chosen: set[str] | None = None
        if types is not None:  # a bare string is one name; what is not a string is no name
            chosen = {types} if isinstance(types, str) else {t for t in types if isinstance(t, str)}

        def work() -> list[Relationship]:
            data = self._tenants.get(tenant)
            found: list[Relationship] = []
            for identity in sorted(data.touching.get(substrate, ())):
                if start is not None and identity <= start:
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
                if len(found) == most:
                    break
            return found

        return await self._read(work)

    async def all_relationships(
        self, tenant: str, *, limit: int, after: int | None = None
    ) -> list[Relationship]:
        page = _page(limit, after)
        if page is None:
            return []
        most, start = page

        def work() -> list[Relationship]:
            data = self._tenants.get(tenant)
            found: list[Relationship] = []
            for identity in data.relationship_order.after(start):
                found.append(data.relationships[identity])
                if len(found) == most:
                    break
            return found

        return await self._read(work)

    async def count_relationships(self, tenant: str) -> Mapping[str, int]:
        return await self._read(lambda: dict(self._tenants.get(tenant).types))

    async def tenants(self) -> list[str]:
        """Every tenant holding a substrate, sorted: optional beside the contract, it lets a
        whole store be copied without naming its tenants."""
        return await self._read(lambda: [name for name, data in self._tenants if data.substrates])

    async def health(self) -> Mapping[str, Any]:
        def work() -> dict[str, Any]:
            tenants = list(self._tenants)
            return {
                "path": str(self.path),
                "journal_bytes": self._journal.offset,
                "journal_lines": self._journal.records,
                "substrates": sum(len(data.substrates) for _, data in tenants),
                "relationships": sum(len(data.relationships) for _, data in tenants),
            }

        return await self._read(work)


def _check_ends(data: Tenant, relationship: Relationship) -> None:
    """Raise :class:`MissingEnd` for the first end the tenant lacks."""
    if relationship.source not in data.substrates:
        raise MissingEnd("source", relationship.source)
    if relationship.target not in data.substrates:
        raise MissingEnd("target", relationship.target)
