"""Both built-in stores take malformed relationship and search arguments calmly.

The contract types these arguments; callers that skip validation (a third-party plugin, a
script) must still get an empty answer or a ValueError naming the argument, never a crash
from deep inside a driver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from butterflyfx.core.store import SubstrateQuery, SubstrateStore
from butterflyfx.plugins.storage_memory import MemoryStore
from butterflyfx.plugins.storage_sqlite import SqliteStore
from butterflyfx.testing.storage import make_relationship, make_substrate

T = TypeVar("T")
TENANT = "default"


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], SubstrateStore]:
    if request.param == "memory":
        return MemoryStore
    return lambda: SqliteStore(tmp_path / "store.sqlite3")


def run(make_store: Callable[[], SubstrateStore], story: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        store = make_store()
        await store.open()
        try:
            return await story(store)
        finally:
            await store.close()

    return asyncio.run(main())


def test_filters_of_the_wrong_kind_find_nothing_and_break_nothing(make_store):
    named = make_substrate(1, {"name": "alpha", "5": 5})
    queries = [
        SubstrateQuery(name_prefix=5),  # type: ignore[arg-type]
        SubstrateQuery(code_contains=["lambda"]),  # type: ignore[arg-type]
        SubstrateQuery(expression_type=3),  # type: ignore[arg-type]
        SubstrateQuery(metadata={5: 5}),  # type: ignore[dict-item]
        SubstrateQuery(metadata={"5": {5}}),  # a set is no JSON value
        SubstrateQuery(metadata={"5": float("nan")}),
        SubstrateQuery(created_after="2024-01-01"),  # type: ignore[arg-type]
        SubstrateQuery(created_before=20240101),  # type: ignore[arg-type]
        SubstrateQuery(has_relationship_type=["dependency"]),  # type: ignore[arg-type]
        SubstrateQuery(has_relationship_type="lone \ud800 surrogate"),
    ]

    async def story(store: SubstrateStore) -> list[list[Any]]:
        await store.put_substrate(TENANT, named)
        found = [await store.search_substrates(TENANT, query, limit=10) for query in queries]
        # The store still answers properly afterwards.
        right = SubstrateQuery(name_prefix="al", metadata={"5": 5})
        found.append(await store.search_substrates(TENANT, right, limit=10))
        return found

    *wrong, right = run(make_store, story)
    assert wrong == [[] for _ in queries]
    assert right == [named]


def test_an_unknown_direction_is_refused_by_name(make_store):
    async def story(store: SubstrateStore) -> None:
        with pytest.raises(ValueError, match="'sideways'"):
            await store.list_relationships(TENANT, 1, "sideways", limit=5)  # type: ignore[arg-type]

    run(make_store, story)


def test_a_bare_type_name_filters_as_one_name_and_odd_names_match_nothing(make_store):
    a, b = make_substrate(1), make_substrate(2)
    sibling = make_relationship(a, b, "sibling")
    dependency = make_relationship(a, b, "dependency")

    async def story(store: SubstrateStore) -> list[list[Any]]:
        for substrate in (a, b):
            await store.put_substrate(TENANT, substrate)
        for relationship in (sibling, dependency):
            await store.put_relationship(TENANT, relationship)

        async def outgoing(types: Any) -> list[Any]:
            return await store.list_relationships(
                TENANT, a.identity, "outgoing", types=types, limit=10
            )

        return [
            await outgoing("sibling"),
            await outgoing(["sibling", 7, None]),
            await outgoing(["lone \ud800", "nul\u0000"]),
        ]

    assert run(make_store, story) == [[sibling], [sibling], []]


def test_timestamps_with_fractions_and_zones_are_kept_to_the_second_in_utc(tmp_path: Path):
    # The memory store keeps what it is given; SQLite keeps whole seconds in UTC, the
    # precision the API serves. Both then compare the same in searches (see conformance).
    a, b = make_substrate(1), make_substrate(2)
    moment = datetime(2024, 5, 17, 10, 30, 15, 999_999, tzinfo=UTC)
    relationship = make_relationship(a, b, created_at=moment)

    async def story(store: SubstrateStore) -> Any:
        for substrate in (a, b):
            await store.put_substrate(TENANT, substrate)
        stored, _ = await store.put_relationship(TENANT, relationship)
        assert stored == await store.get_relationship(TENANT, relationship.identity)
        return stored.created_at

    kept = run(lambda: SqliteStore(tmp_path / "store.sqlite3"), story)
    assert kept == moment.replace(microsecond=0)
