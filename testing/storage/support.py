"""What the stories share: fixed instants, tenants, builders and the store runner."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from butterflyfx.core.store import SubstrateStore
from butterflyfx.kernel import JSONValue, Relationship, Substrate

T = TypeVar("T")

CREATED = datetime(2024, 5, 17, 8, 30, 15, tzinfo=UTC)
LATER = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
LATEST = datetime(2024, 7, 4, 23, 59, 59, tzinfo=UTC)
TENANT = "acme"
OTHER_TENANT = "globex"
EDGE_IDENTITIES = [0, 1, 2**63 - 2, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1]


@dataclass(frozen=True)
class StoreFactory:
    """``make()`` returns a fresh, unopened store; see the module docstring for ``persistent``."""

    make: Callable[[], SubstrateStore]
    persistent: bool = False


def make_substrate(
    i: int, metadata: Mapping[str, JSONValue] | None = None, **fields: Any
) -> Substrate:
    """A distinct lambda substrate per ``i``, created at a fixed second in UTC."""
    substrate = Substrate.create(
        "lambda",
        f"lambda **kw: kw.get('x', 0) * {i}",
        {"n": i} if metadata is None else metadata,
        created_at=CREATED,
    )
    return replace(substrate, **fields) if fields else substrate


def make_relationship(
    source: Substrate | int,
    target: Substrate | int,
    relationship_type: str = "dependency",
    **fields: Any,
) -> Relationship:
    """``source -[relationship_type]-> target`` created at a fixed second in UTC; ``fields``
    (bidirectional, weight, metadata, created_at) as in :meth:`Relationship.create`."""
    fields.setdefault("created_at", CREATED)
    return Relationship.create(_identity(source), _identity(target), relationship_type, **fields)


def _identity(end: Substrate | int) -> int:
    return end.identity if isinstance(end, Substrate) else end


async def _put_all(store: SubstrateStore, tenant: str, items: Iterable[Any]) -> None:
    """Store substrates and relationships in the order given; each must be new."""
    for item in items:
        if isinstance(item, Substrate):
            assert (await store.put_substrate(tenant, item))[1] is True
        else:
            assert (await store.put_relationship(tenant, item))[1] is True


def _ids(items: Iterable[Substrate | Relationship]) -> list[int]:
    return [item.identity for item in items]


async def _every_page(
    fetch: Callable[[int | None], Awaitable[list[Any]]], *, limit: int, most_pages: int
) -> list[int]:
    """Page through ``fetch(after)`` (which asks for ``limit`` at a time) to the end."""
    seen: list[int] = []
    after: int | None = None
    for _ in range(most_pages):
        page = await fetch(after)
        assert len(page) <= limit
        if not page:
            return seen
        seen.extend(item.identity for item in page)
        after = page[-1].identity
    raise AssertionError(f"the listing does not end within {most_pages} pages")


def _factory(given: Any) -> StoreFactory:
    if isinstance(given, StoreFactory):
        return given
    if callable(given):  # a bare callable is accepted as a store that keeps nothing
        return StoreFactory(given, persistent=bool(getattr(given, "persistent", False)))
    raise TypeError("substrate_store_factory must return a StoreFactory or a callable")


def on_store(given: Any, story: Callable[[SubstrateStore], Awaitable[T]]) -> T:
    """Open a new store, run ``story`` on it, close it; all in one event loop."""

    async def main() -> T:
        store = _factory(given).make()
        await store.open()
        try:
            return await story(store)
        finally:
            await store.close()

    return asyncio.run(main())
