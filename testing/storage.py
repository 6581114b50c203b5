"""The storage conformance suite: does a store keep the :class:`SubstrateStore` contract?

A store plugin passes it by subclassing :class:`StoreConformance` in one of its test
files and providing one fixture, ``substrate_store_factory``, that returns a
:class:`StoreFactory`::

    # tests/test_conformance.py of the plugin "butterflyfx-storage-acme"
    import pytest

    from butterflyfx.testing.storage import StoreConformance, StoreFactory
    from butterflyfx_storage_acme import AcmeStore


    class TestAcmeStore(StoreConformance):
        @pytest.fixture
        def substrate_store_factory(self, tmp_path):
            # Every call makes a new, unopened store on the same data (here: one file).
            return StoreFactory(lambda: AcmeStore(tmp_path / "acme.db"), persistent=True)

pytest collects the inherited test methods as the subclass's own; ``StoreConformance``
itself is not collected because its name does not start with ``Test``. (Test functions
in a plugin module enabled by ``pytest_plugins`` are never collected, so the suite is a
class to subclass rather than a pytest plugin.) The fixture may also live in the
module or in a ``conftest.py``.

``persistent=True`` says that a store made later in the same test sees what an earlier
one wrote (a file or a server behind them). The suite then also checks that closing
keeps every write and that two stores open at once (two workers) agree. A store that
keeps nothing, like ``storage.memory``, says ``persistent=False`` and those stories skip.

The suite opens and closes every store itself, runs each story with ``asyncio.run`` (no
pytest asyncio plugin needed), and builds some substrates with chosen identities: a
store keeps the identity it is given and never recomputes it.

The stories cover substrates, invocation counts, relationships (the ends must exist;
deleting a substrate takes its relationships with it, in both directions; bidirectional
ones list both ways) and ``search_substrates`` (every filter alone and together, metadata
compared as JSON values). Timestamps in the stories are whole seconds: a store may drop
fractions of a second (``storage.sqlite`` does), since the API serves none.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest

from butterflyfx.core.store import Direction, MissingEnd, SubstrateQuery, SubstrateStore
from butterflyfx.kernel import InvocationStats, JSONValue, Relationship, Substrate

__all__ = ["StoreConformance", "StoreFactory", "make_relationship", "make_substrate"]

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


class StoreConformance:
    """Stories every :class:`SubstrateStore` must pass; subclass it as ``Test<YourStore>``."""

    # -- what a store is ----------------------------------------------------------------
    def test_the_store_has_every_method_of_the_contract_and_a_name(
        self, substrate_store_factory: Any
    ) -> None:
        store = _factory(substrate_store_factory).make()
        assert isinstance(store, SubstrateStore)
        assert isinstance(store.name, str) and store.name

    def test_health_answers_with_a_mapping(self, substrate_store_factory: Any) -> None:
        async def story(store: SubstrateStore) -> None:
            await store.put_substrate(TENANT, make_substrate(1))
            assert isinstance(await store.health(), Mapping)

        on_store(substrate_store_factory, story)

    # -- creating and reading -----------------------------------------------------------
    def test_a_new_substrate_is_created_once_then_returned_unchanged(
        self, substrate_store_factory: Any
    ) -> None:
        first = make_substrate(1, {"name": "first"})
        again = replace(first, metadata={"name": "second"}, created_at=LATER, updated_at=LATER)

        async def story(store: SubstrateStore) -> None:
            assert await store.put_substrate(TENANT, first) == (first, True)
            assert await store.put_substrate(TENANT, again) == (first, False)
            assert await store.get_substrate(TENANT, first.identity) == first
            assert await store.count_substrates(TENANT) == 1

        on_store(substrate_store_factory, story)

    def test_a_substrate_reads_back_equal_in_every_field(
        self, substrate_store_factory: Any
    ) -> None:
        metadata: dict[str, JSONValue] = {
            "name": "Schmetterling 🦋",
            "languages": {"zh": "蝴蝶效应", "ar": "فراشة", "combining": "e\u0301"},
            "quotes": 'it\'s "quoted", with a \\ and a\nnewline and a \u0000 nul',
            "": "an empty key",
            "numbers": [0, -7, 2**53, 0.1, -2.5e-300, 1.5e300],
            "flags": [True, False, None],
            "nested": {"a": {"b": {"c": [[], {}, [{"d": "deep"}]]}}},
        }
        substrate = Substrate.create(
            "lambda",
            "lambda **kw: kw.get('蝴蝶', 0) + kw.get('x', 1)",
            metadata,
            created_at=CREATED,
            updated_at=LATER,
            version=4,
        )

        async def story(store: SubstrateStore) -> None:
            await store.put_substrate(TENANT, substrate)
            found = await store.get_substrate(TENANT, substrate.identity)
            assert found == substrate
            assert found is not None and found.metadata == metadata
            for moment in (found.created_at, found.updated_at):
                assert moment is not None and moment.utcoffset() is not None  # aware, UTC

        on_store(substrate_store_factory, story)

    def test_an_unknown_identity_reads_as_none(self, substrate_store_factory: Any) -> None:
        async def story(store: SubstrateStore) -> None:
            assert await store.get_substrate(TENANT, make_substrate(1).identity) is None
            assert await store.count_substrates(TENANT) == 0
            assert await store.list_substrates(TENANT, limit=10) == []

        on_store(substrate_store_factory, story)

    def test_identities_at_both_ends_of_64_bits_are_kept_and_listed_in_order(
        self, substrate_store_factory: Any
    ) -> None:
        # Inserted out of order, across the signed boundary at 2**63 that trips stores
        # keeping identities in signed 64-bit columns.
        substrates = [
            make_substrate(i, identity=identity)
            for i, identity in enumerate(reversed(EDGE_IDENTITIES))
        ]

        async def story(store: SubstrateStore) -> None:
            for substrate in substrates:
                assert (await store.put_substrate(TENANT, substrate))[1] is True
            for substrate in substrates:
                assert await store.get_substrate(TENANT, substrate.identity) == substrate
            listed = await store.list_substrates(TENANT, limit=100)
            assert [s.identity for s in listed] == EDGE_IDENTITIES
            after_boundary = await store.list_substrates(TENANT, limit=2, after=2**63 - 1)
            assert [s.identity for s in after_boundary] == [2**63, 2**63 + 1]
            assert await store.list_substrates(TENANT, limit=5, after=2**64 - 1) == []

        on_store(substrate_store_factory, story)

    # -- listing --------------------------------------------------------------------------
    def test_paging_through_a_list_gives_every_substrate_once_in_ascending_order(
        self, substrate_store_factory: Any
    ) -> None:
        substrates = [make_substrate(i) for i in range(23)]
        expected = sorted(s.identity for s in substrates)

        async def story(store: SubstrateStore) -> None:
            for substrate in substrates:
                await store.put_substrate(TENANT, substrate)
            seen: list[int] = []
            after: int | None = None
            pages = 0
            while True:
                page = await store.list_substrates(TENANT, limit=5, after=after)
                assert len(page) <= 5
                if not page:
                    break
                seen.extend(s.identity for s in page)
                after = page[-1].identity
                pages += 1
                assert pages <= 5, "the listing does not end"
            assert seen == expected
            everything = await store.list_substrates(TENANT, limit=1000)
            assert [s.identity for s in everything] == expected
            assert {s.identity: s for s in everything} == {s.identity: s for s in substrates}
            # ``after`` need not be a stored identity: the page starts just past it.
            between = expected[10] + 1
            assert between != expected[11]
            page = await store.list_substrates(TENANT, limit=3, after=between)
            assert [s.identity for s in page] == expected[11:14]

        on_store(substrate_store_factory, story)

    # -- tenants ----------------------------------------------------------------------------
    def test_tenants_never_see_each_others_substrates(self, substrate_store_factory: Any) -> None:
        ours = make_substrate(1, {"owner": TENANT})
        theirs = replace(ours, metadata={"owner": OTHER_TENANT})
        only_ours = make_substrate(2)

        async def story(store: SubstrateStore) -> None:
            assert (await store.put_substrate(TENANT, ours))[1] is True
            assert (await store.put_substrate(OTHER_TENANT, theirs))[1] is True
            await store.put_substrate(TENANT, only_ours)
            assert await store.get_substrate(OTHER_TENANT, ours.identity) == theirs
            assert await store.get_substrate(OTHER_TENANT, only_ours.identity) is None
            assert await store.count_substrates(TENANT) == 2
            assert await store.count_substrates(OTHER_TENANT) == 1
            assert await store.list_substrates(OTHER_TENANT, limit=10) == [theirs]

            await store.update_metadata(TENANT, ours.identity, {"owner": "changed"}, now=LATER)
            assert await store.get_substrate(OTHER_TENANT, ours.identity) == theirs
            await store.add_invocations(TENANT, {ours.identity: InvocationStats(3)})
            assert await store.invocation_stats(OTHER_TENANT, ours.identity) is None
            await store.add_invocations(OTHER_TENANT, {only_ours.identity: InvocationStats(1)})
            assert await store.invocation_stats(TENANT, only_ours.identity) is None

            assert await store.delete_substrate(OTHER_TENANT, only_ours.identity) is False
            assert await store.delete_substrate(TENANT, ours.identity) is True
            assert await store.get_substrate(OTHER_TENANT, ours.identity) == theirs
            assert await store.count_substrates(TENANT) == 1
            assert await store.count_substrates("initech") == 0

        on_store(substrate_store_factory, story)

    # -- changing and deleting ---------------------------------------------------------------
    def test_updating_metadata_replaces_it_and_bumps_the_version(
        self, substrate_store_factory: Any
    ) -> None:
        original = make_substrate(1, {"name": "original", "keep": False})
        replacement: dict[str, JSONValue] = {"name": "renamed", "tags": ["a", "b"]}

        async def story(store: SubstrateStore) -> None:
            await store.put_substrate(TENANT, original)
            updated = await store.update_metadata(TENANT, original.identity, replacement, now=LATER)
            assert updated == replace(original, metadata=replacement, updated_at=LATER, version=2)
            assert await store.get_substrate(TENANT, original.identity) == updated
            again = await store.update_metadata(TENANT, original.identity, {}, now=LATEST)
            assert again is not None
            assert (again.version, again.updated_at, again.metadata) == (3, LATEST, {})
            assert again.created_at == CREATED

        on_store(substrate_store_factory, story)

    def test_updating_an_absent_substrate_gives_none_and_creates_nothing(
        self, substrate_store_factory: Any
    ) -> None:
        absent = make_substrate(1)

        async def story(store: SubstrateStore) -> None:
            assert await store.update_metadata(TENANT, absent.identity, {"a": 1}, now=LATER) is None
            assert await store.get_substrate(TENANT, absent.identity) is None
            assert await store.count_substrates(TENANT) == 0

        on_store(substrate_store_factory, story)

    def test_deleting_removes_the_substrate_and_its_invocation_totals(
        self, substrate_store_factory: Any
    ) -> None:
        doomed, kept = make_substrate(1), make_substrate(2)

        async def story(store: SubstrateStore) -> None:
            await store.put_substrate(TENANT, doomed)
            await store.put_substrate(TENANT, kept)
            await store.add_invocations(
                TENANT, {doomed.identity: InvocationStats(5, 1, 2.5, LATER)}
            )
            assert await store.delete_substrate(TENANT, doomed.identity) is True
            assert await store.get_substrate(TENANT, doomed.identity) is None
            assert await store.invocation_stats(TENANT, doomed.identity) is None
            assert await store.count_substrates(TENANT) == 1
            assert await store.list_substrates(TENANT, limit=10) == [kept]
            assert await store.delete_substrate(TENANT, doomed.identity) is False
            # Brought back, it starts afresh: nothing of the old one is left.
            assert await store.put_substrate(TENANT, doomed) == (doomed, True)
            assert await store.invocation_stats(TENANT, doomed.identity) is None

        on_store(substrate_store_factory, story)

    # -- invocation totals ---------------------------------------------------------------------
    def test_invocation_counts_add_up_and_remember_the_latest_call(
        self, substrate_store_factory: Any
    ) -> None:
        first, second = make_substrate(1), make_substrate(2)

        async def story(store: SubstrateStore) -> None:
            await store.put_substrate(TENANT, first)
            await store.put_substrate(TENANT, second)
            assert await store.invocation_stats(TENANT, first.identity) is None
            await store.add_invocations(
                TENANT,
                {
                    first.identity: InvocationStats(3, 1, 4.5, LATER),
                    second.identity: InvocationStats(1, 0, 0.25, CREATED),
                },
            )
            for later_batch in (
                InvocationStats(2, 0, 1.25, LATEST),
                # An older or missing timestamp never moves "last" back.
                InvocationStats(1, 1, 1.0, CREATED),
                InvocationStats(1, 0, 1.0, None),
            ):
                await store.add_invocations(TENANT, {first.identity: later_batch})
            await store.add_invocations(TENANT, {})
            # Milliseconds are sums of binary fractions here, so any float adds them exactly.
            assert await store.invocation_stats(TENANT, first.identity) == InvocationStats(
                7, 2, 7.75, LATEST
            )
            assert await store.invocation_stats(TENANT, second.identity) == InvocationStats(
                1, 0, 0.25, CREATED
            )

        on_store(substrate_store_factory, story)

    def test_invocations_of_an_absent_substrate_are_skipped(
        self, substrate_store_factory: Any
    ) -> None:
        present, absent = make_substrate(1), make_substrate(2)

        async def story(store: SubstrateStore) -> None:
            await store.put_substrate(TENANT, present)
            await store.add_invocations(
                TENANT,
                {absent.identity: InvocationStats(9), present.identity: InvocationStats(2)},
            )
            assert await store.invocation_stats(TENANT, absent.identity) is None
            assert await store.get_substrate(TENANT, absent.identity) is None
            assert await store.count_substrates(TENANT) == 1
            stats = await store.invocation_stats(TENANT, present.identity)
            assert stats is not None and stats.count == 2
            # Created afterwards, it does not inherit the skipped counts.
            await store.put_substrate(TENANT, absent)
            assert await store.invocation_stats(TENANT, absent.identity) is None

        on_store(substrate_store_factory, story)

    # -- concurrency -----------------------------------------------------------------------------
    def test_fifty_concurrent_puts_of_one_substrate_create_it_exactly_once(
        self, substrate_store_factory: Any
    ) -> None:
        substrate = make_substrate(1)

        async def story(store: SubstrateStore) -> None:
            results = await asyncio.gather(
                *(store.put_substrate(TENANT, substrate) for _ in range(50))
            )
            assert [created for _, created in results].count(True) == 1
            assert all(stored == substrate for stored, _ in results)
            assert await store.count_substrates(TENANT) == 1

        on_store(substrate_store_factory, story)

    def test_concurrent_puts_of_different_substrates_all_land(
        self, substrate_store_factory: Any
    ) -> None:
        substrates = [make_substrate(i) for i in range(40)]

        async def story(store: SubstrateStore) -> None:
            results = await asyncio.gather(*(store.put_substrate(TENANT, s) for s in substrates))
            assert all(created for _, created in results)
            assert await store.count_substrates(TENANT) == 40

        on_store(substrate_store_factory, story)

    # -- persistence (factories with persistent=True) --------------------------------------------
    def test_what_was_written_before_closing_is_there_after_reopening(
        self, substrate_store_factory: Any
    ) -> None:
        factory = _factory(substrate_store_factory)
        if not factory.persistent:
            pytest.skip("the store keeps nothing after it closes (persistent=False)")
        kept, updated, deleted = make_substrate(1), make_substrate(2), make_substrate(3)

        async def write(store: SubstrateStore) -> Substrate | None:
            for substrate in (kept, updated, deleted):
                await store.put_substrate(TENANT, substrate)
            await store.add_invocations(TENANT, {kept.identity: InvocationStats(4, 1, 2.0, LATER)})
            await store.delete_substrate(TENANT, deleted.identity)
            return await store.update_metadata(TENANT, updated.identity, {"v": 2}, now=LATER)

        async def read(store: SubstrateStore) -> None:
            assert await store.get_substrate(TENANT, kept.identity) == kept
            assert await store.get_substrate(TENANT, updated.identity) == written
            assert await store.get_substrate(TENANT, deleted.identity) is None
            assert await store.count_substrates(TENANT) == 2
            assert await store.invocation_stats(TENANT, kept.identity) == InvocationStats(
                4, 1, 2.0, LATER
            )
            assert await store.put_substrate(TENANT, kept) == (kept, False)

        written = on_store(factory, write)
        assert written is not None and written.version == 2
        on_store(factory, read)

    def test_two_stores_on_the_same_data_agree_on_who_created_a_substrate(
        self, substrate_store_factory: Any
    ) -> None:
        factory = _factory(substrate_store_factory)
        if not factory.persistent:
            pytest.skip("stores made by the factory do not share data (persistent=False)")
        contested = make_substrate(1)
        written_by_one = make_substrate(2)

        async def main() -> None:
            one, two = factory.make(), factory.make()
            await one.open()
            try:
                await two.open()
                try:
                    results = await asyncio.gather(
                        *(store.put_substrate(TENANT, contested) for store in (one, two) * 25)
                    )
                    assert [created for _, created in results].count(True) == 1
                    await one.put_substrate(TENANT, written_by_one)
                    seen = await two.get_substrate(TENANT, written_by_one.identity)
                    assert seen == written_by_one
                    assert await two.count_substrates(TENANT) == 2
                finally:
                    await two.close()
            finally:
                await one.close()

        asyncio.run(main())

    # -- relationships: creating, reading, deleting ------------------------------------------
    def test_a_new_relationship_is_created_once_then_returned_unchanged(
        self, substrate_store_factory: Any
    ) -> None:
        a, b = make_substrate(1), make_substrate(2)
        first = make_relationship(a, b, "dependency", weight=2.5, metadata={"why": "first"})
        again = make_relationship(
            a, b, "dependency", bidirectional=True, metadata={"why": "again"}, created_at=LATER
        )
        assert again.identity == first.identity  # identity is source, target and type only

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [a, b])
            assert await store.put_relationship(TENANT, first) == (first, True)
            assert await store.put_relationship(TENANT, again) == (first, False)
            assert await store.get_relationship(TENANT, first.identity) == first
            assert await store.count_relationships(TENANT) == {"dependency": 1}
            # Another type between the same two substrates is another relationship.
            other = make_relationship(a, b, "sibling")
            assert await store.put_relationship(TENANT, other) == (other, True)
            assert await store.count_relationships(TENANT) == {"dependency": 1, "sibling": 1}

        on_store(substrate_store_factory, story)

    def test_a_relationship_reads_back_equal_in_every_field(
        self, substrate_store_factory: Any
    ) -> None:
        a, b = make_substrate(1), make_substrate(2)
        metadata: dict[str, JSONValue] = {
            "label": "Schmetterling 🦋 蝴蝶 فراشة",
            "quotes": 'it\'s "quoted", a \\ and a \u0000 nul',
            "numbers": [0, -7, 2**53, 0.1, 1.5e300],
            "flags": [True, False, None],
            "nested": {"a": {"b": [[], {}]}},
        }
        relationships = [
            make_relationship(
                a, b, "embedding", bidirectional=True, weight=0.25, metadata=metadata
            ),
            make_relationship(b, a, "lineage", weight=0.0, created_at=LATEST),
            make_relationship(a, b, "orthogonal", weight=1e-300, created_at=None),
            make_relationship(a, a, "recursion"),
        ]

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [a, b, *relationships])
            for relationship in relationships:
                found = await store.get_relationship(TENANT, relationship.identity)
                assert found == relationship
                assert found is not None and isinstance(found.bidirectional, bool)
                if found.created_at is not None:
                    assert found.created_at.utcoffset() is not None  # aware, UTC
                if found.weight is not None:
                    assert isinstance(found.weight, float)

        on_store(substrate_store_factory, story)

    def test_an_unknown_relationship_reads_as_none_and_deletes_as_false(
        self, substrate_store_factory: Any
    ) -> None:
        a, b = make_substrate(1), make_substrate(2)
        never_stored = make_relationship(a, b)

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [a, b])
            for identity in (never_stored.identity, *EDGE_IDENTITIES, -1, 2**64, 2**80):
                assert await store.get_relationship(TENANT, identity) is None
                assert await store.delete_relationship(TENANT, identity) is False
            assert await store.count_relationships(TENANT) == {}
            assert await store.all_relationships(TENANT, limit=10) == []

        on_store(substrate_store_factory, story)

    def test_a_relationship_to_a_missing_substrate_is_refused_naming_the_end(
        self, substrate_store_factory: Any
    ) -> None:
        present, absent, elsewhere = make_substrate(1), make_substrate(2), make_substrate(3)

        async def refused(store: SubstrateStore, relationship: Relationship) -> tuple[str, int]:
            with pytest.raises(MissingEnd) as caught:
                await store.put_relationship(TENANT, relationship)
            return caught.value.end, caught.value.identity

        async def story(store: SubstrateStore) -> None:
            await store.put_substrate(TENANT, present)
            await store.put_substrate(OTHER_TENANT, elsewhere)  # another tenant's is not ours
            cases = [
                (make_relationship(absent, present), ("source", absent.identity)),
                (make_relationship(present, absent), ("target", absent.identity)),
                (make_relationship(absent, elsewhere), ("source", absent.identity)),
                (make_relationship(present, elsewhere), ("target", elsewhere.identity)),
                (make_relationship(absent, absent, "cycle"), ("source", absent.identity)),
                # Numbers no substrate can have are missing too (built without validation).
                (Relationship(2**64, present.identity, "sibling"), ("source", 2**64)),
                (Relationship(present.identity, -1, "sibling"), ("target", -1)),
            ]
            for relationship, expected in cases:
                assert await refused(store, relationship) == expected
                if relationship.source != 2**64 and relationship.target != -1:
                    assert await store.get_relationship(TENANT, relationship.identity) is None
            assert await store.count_relationships(TENANT) == {}
            assert await store.all_relationships(TENANT, limit=10) == []
            assert (
                await store.list_relationships(TENANT, present.identity, "outgoing", limit=9) == []
            )

        on_store(substrate_store_factory, story)

    def test_deleting_a_relationship_removes_it_everywhere_and_it_can_come_back(
        self, substrate_store_factory: Any
    ) -> None:
        a, b = make_substrate(1), make_substrate(2)
        doomed = make_relationship(a, b, "containment", bidirectional=True)
        kept = make_relationship(b, a, "attribute")

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [a, b, doomed, kept])
            assert await store.delete_relationship(TENANT, doomed.identity) is True
            assert await store.get_relationship(TENANT, doomed.identity) is None
            assert await store.delete_relationship(TENANT, doomed.identity) is False
            for substrate in (a, b):
                for direction in ("outgoing", "incoming"):
                    listed = await store.list_relationships(
                        TENANT, substrate.identity, direction, limit=10
                    )
                    assert doomed.identity not in _ids(listed)
            assert await store.all_relationships(TENANT, limit=10) == [kept]
            assert await store.count_relationships(TENANT) == {"attribute": 1}
            # Both substrates are untouched, and the relationship can be made again.
            assert await store.count_substrates(TENANT) == 2
            assert await store.put_relationship(TENANT, doomed) == (doomed, True)

        on_store(substrate_store_factory, story)

    # -- relationships: listing --------------------------------------------------------------
    def test_outgoing_and_incoming_follow_direction_and_bidirectional_ones_show_both_ways(
        self, substrate_store_factory: Any
    ) -> None:
        a, b, c, d, e = (make_substrate(i) for i in range(1, 6))
        a_b = make_relationship(a, b, "dependency")
        a_c = make_relationship(a, c, "sibling", bidirectional=True)
        d_a = make_relationship(d, a, "lineage")
        e_a = make_relationship(e, a, "adjacency", bidirectional=True)
        b_c = make_relationship(b, c, "dependency")
        loop = make_relationship(a, a, "recursion")
        both_ways_loop = make_relationship(a, a, "cycle", bidirectional=True)
        expected: list[tuple[Substrate, Direction, list[Relationship]]] = [
            (a, "outgoing", [a_b, a_c, e_a, loop, both_ways_loop]),
            (a, "incoming", [d_a, e_a, a_c, loop, both_ways_loop]),
            (b, "outgoing", [b_c]),
            (b, "incoming", [a_b]),
            (c, "outgoing", [a_c]),
            (c, "incoming", [a_c, b_c]),
            (d, "outgoing", [d_a]),
            (d, "incoming", []),
            (e, "outgoing", [e_a]),
            (e, "incoming", [e_a]),
        ]

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [a, b, c, d, e, a_b, a_c, d_a, e_a, b_c, loop])
            await store.put_relationship(TENANT, both_ways_loop)
            for substrate, direction, relationships in expected:
                listed = await store.list_relationships(
                    TENANT, substrate.identity, direction, limit=100
                )
                # Each once (a self-loop too), in ascending relationship identity.
                assert listed == sorted(relationships, key=lambda r: r.identity), (
                    substrate.identity,
                    direction,
                )

        on_store(substrate_store_factory, story)

    def test_a_types_filter_keeps_only_relationships_of_those_types(
        self, substrate_store_factory: Any
    ) -> None:
        hub, x, y = make_substrate(1), make_substrate(2), make_substrate(3)
        kinds = ["dependency", "sibling", "lineage"]
        outgoing = [make_relationship(hub, end, kind) for end in (x, y) for kind in kinds]
        incoming_both_ways = make_relationship(x, hub, "sibling", bidirectional=True)

        def only(kinds_kept: set[str]) -> list[Relationship]:
            chosen = [
                r for r in [*outgoing, incoming_both_ways] if r.relationship_type in kinds_kept
            ]
            return sorted(chosen, key=lambda r: r.identity)

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [hub, x, y, *outgoing, incoming_both_ways])

            async def listed(types: list[str] | None) -> list[Relationship]:
                return await store.list_relationships(
                    TENANT, hub.identity, "outgoing", types=types, limit=100
                )

            assert await listed(None) == only(set(kinds))
            assert await listed(["sibling"]) == only({"sibling"})
            assert await listed(["lineage", "dependency"]) == only({"lineage", "dependency"})
            assert await listed(["dependency", "dependency"]) == only({"dependency"})
            assert await listed(["boundary"]) == []
            assert await listed([]) == []  # a filter given empty keeps nothing
            incoming = await store.list_relationships(
                TENANT, hub.identity, "incoming", types=["sibling", "lineage"], limit=100
            )
            assert incoming == [incoming_both_ways]

        on_store(substrate_store_factory, story)

    def test_paging_through_a_substrates_relationships_gives_each_once_in_order(
        self, substrate_store_factory: Any
    ) -> None:
        hub = make_substrate(0)
        ends = [make_substrate(i) for i in range(1, 24)]
        outgoing = [make_relationship(hub, end, "aggregation") for end in ends]
        # Every third end also points back both ways: outgoing from hub's side too.
        back = [make_relationship(end, hub, "boundary", bidirectional=True) for end in ends[::3]]
        # Noise that must not show: incoming only, and relationships between the ends.
        noise = [make_relationship(end, hub, "extraction") for end in ends[1::3]]
        noise += [make_relationship(ends[0], end, "sibling") for end in ends[1:5]]
        expected = sorted(r.identity for r in [*outgoing, *back])
        boundary_only = sorted(r.identity for r in back)

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [hub, *ends, *outgoing, *back, *noise])

            def pages(types: list[str] | None = None) -> Callable[[int | None], Awaitable[Any]]:
                async def fetch(after: int | None) -> list[Relationship]:
                    return await store.list_relationships(
                        TENANT, hub.identity, "outgoing", types=types, limit=4, after=after
                    )

                return fetch

            assert await _every_page(pages(), limit=4, most_pages=20) == expected
            assert await _every_page(pages(["boundary"]), limit=4, most_pages=20) == boundary_only
            # ``after`` need not be a listed identity: the page starts just past it.
            between = expected[9] + 1
            assert between != expected[10]
            page = await store.list_relationships(
                TENANT, hub.identity, "outgoing", limit=3, after=between
            )
            assert _ids(page) == expected[10:13]
            for limit, after in ((0, None), (-1, None), (5, 2**64 - 1), (5, expected[-1])):
                assert (
                    await store.list_relationships(
                        TENANT, hub.identity, "outgoing", limit=limit, after=after
                    )
                    == []
                )
            everything = await store.list_relationships(
                TENANT, hub.identity, "outgoing", limit=1000, after=-5
            )
            assert _ids(everything) == expected
            for nobody in (make_substrate(99).identity, -1, 2**64):
                assert await store.list_relationships(TENANT, nobody, "incoming", limit=9) == []

        on_store(substrate_store_factory, story)

    def test_every_relationship_pages_out_once_in_identity_order_across_64_bits(
        self, substrate_store_factory: Any
    ) -> None:
        substrates = [make_substrate(i, identity=n) for i, n in enumerate(EDGE_IDENTITIES)]
        relationships = [
            make_relationship(source, target, kind)
            for source in substrates[:4]
            for target in substrates[4:]
            for kind in ("dependency", "adjacency")
        ]
        expected = sorted(r.identity for r in relationships)
        # The hashes fall on both sides of 2**63, where a signed 64-bit column wraps.
        assert expected[0] < 2**63 <= expected[-1]

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [*substrates, *relationships])

            async def fetch(after: int | None) -> list[Relationship]:
                return await store.all_relationships(TENANT, limit=7, after=after)

            assert await _every_page(fetch, limit=7, most_pages=10) == expected
            everything = await store.all_relationships(TENANT, limit=1000)
            assert {r.identity: r for r in everything} == {r.identity: r for r in relationships}
            signed_boundary = await store.all_relationships(TENANT, limit=1000, after=2**63 - 1)
            assert _ids(signed_boundary) == [i for i in expected if i >= 2**63]
            assert await store.all_relationships(TENANT, limit=0) == []
            assert await store.all_relationships(TENANT, limit=5, after=2**64 - 1) == []
            assert await store.count_relationships(TENANT) == {"dependency": 16, "adjacency": 16}

        on_store(substrate_store_factory, story)

    def test_relationships_are_counted_by_type(self, substrate_store_factory: Any) -> None:
        a, b, c = make_substrate(1), make_substrate(2), make_substrate(3)
        relationships = [
            make_relationship(a, b, "dependency"),
            make_relationship(b, c, "dependency"),
            make_relationship(c, a, "dependency", bidirectional=True),
            make_relationship(a, c, "sibling", bidirectional=True),
            make_relationship(b, b, "recursion"),
        ]

        async def story(store: SubstrateStore) -> None:
            assert await store.count_relationships(TENANT) == {}
            await _put_all(store, TENANT, [a, b, c, *relationships])
            assert await store.count_relationships(TENANT) == {
                "dependency": 3,
                "sibling": 1,
                "recursion": 1,
            }
            await store.delete_relationship(TENANT, relationships[3].identity)
            # A type with none left is absent, not zero.
            assert await store.count_relationships(TENANT) == {"dependency": 3, "recursion": 1}
            await store.delete_substrate(TENANT, b.identity)
            assert await store.count_relationships(TENANT) == {"dependency": 1}

        on_store(substrate_store_factory, story)

    # -- relationships: deleting substrates ---------------------------------------------------
    def test_deleting_a_substrate_deletes_its_relationships_in_both_directions(
        self, substrate_store_factory: Any
    ) -> None:
        doomed, b, c, d = (make_substrate(i) for i in range(1, 5))
        gone = [
            make_relationship(doomed, b, "dependency"),
            make_relationship(c, doomed, "lineage"),
            make_relationship(doomed, c, "sibling", bidirectional=True),
            make_relationship(d, doomed, "adjacency", bidirectional=True),
            make_relationship(doomed, doomed, "recursion"),
        ]
        kept = [make_relationship(b, c, "dependency"), make_relationship(c, d, "boundary")]

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [doomed, b, c, d, *gone, *kept])
            assert await store.delete_substrate(TENANT, doomed.identity) is True
            for relationship in gone:
                assert await store.get_relationship(TENANT, relationship.identity) is None
                assert await store.delete_relationship(TENANT, relationship.identity) is False
            everything = await store.all_relationships(TENANT, limit=100)
            assert everything == sorted(kept, key=lambda r: r.identity)
            assert await store.count_relationships(TENANT) == {"dependency": 1, "boundary": 1}
            listed = {
                (s.identity, direction): _ids(
                    await store.list_relationships(TENANT, s.identity, direction, limit=100)
                )
                for s in (doomed, b, c, d)
                for direction in ("outgoing", "incoming")
            }
            k_bc, k_cd = kept[0].identity, kept[1].identity
            assert listed == {
                (doomed.identity, "outgoing"): [],
                (doomed.identity, "incoming"): [],
                (b.identity, "outgoing"): [k_bc],
                (b.identity, "incoming"): [],
                (c.identity, "outgoing"): [k_cd],
                (c.identity, "incoming"): [k_bc],
                (d.identity, "outgoing"): [],
                (d.identity, "incoming"): [k_cd],
            }
            # Brought back, the substrate starts with no relationships at all.
            await store.put_substrate(TENANT, doomed)
            for direction in ("outgoing", "incoming"):
                assert (
                    await store.list_relationships(TENANT, doomed.identity, direction, limit=9)
                    == []
                )
            assert len(await store.all_relationships(TENANT, limit=100)) == 2

        on_store(substrate_store_factory, story)

    def test_tenants_never_see_each_others_relationships(
        self, substrate_store_factory: Any
    ) -> None:
        a, b, c = make_substrate(1), make_substrate(2), make_substrate(3)
        ours = make_relationship(a, b, "dependency", metadata={"owner": TENANT})
        theirs = make_relationship(a, b, "dependency", metadata={"owner": OTHER_TENANT})
        only_ours = make_relationship(b, c, "sibling", bidirectional=True)

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [a, b, c, ours, only_ours])
            # The other tenant lacks c: the relationship's end is missing there.
            await _put_all(store, OTHER_TENANT, [a, b])
            with pytest.raises(MissingEnd):
                await store.put_relationship(OTHER_TENANT, only_ours)
            assert await store.put_relationship(OTHER_TENANT, theirs) == (theirs, True)
            assert await store.get_relationship(TENANT, ours.identity) == ours
            assert await store.get_relationship(OTHER_TENANT, ours.identity) == theirs
            assert await store.get_relationship(OTHER_TENANT, only_ours.identity) is None
            assert await store.all_relationships(OTHER_TENANT, limit=10) == [theirs]
            assert await store.count_relationships(OTHER_TENANT) == {"dependency": 1}
            assert await store.count_relationships(TENANT) == {"dependency": 1, "sibling": 1}
            assert (
                await store.list_relationships(OTHER_TENANT, b.identity, "outgoing", limit=9) == []
            )
            assert await store.delete_relationship(OTHER_TENANT, only_ours.identity) is False

            # Deleting one tenant's substrate leaves the other's relationships alone.
            assert await store.delete_substrate(OTHER_TENANT, a.identity) is True
            assert await store.get_relationship(OTHER_TENANT, theirs.identity) is None
            assert await store.get_relationship(TENANT, ours.identity) == ours
            assert await store.delete_relationship(TENANT, ours.identity) is True
            assert await store.count_relationships(OTHER_TENANT) == {}
            assert await store.count_relationships("initech") == {}
            assert await store.all_relationships("initech", limit=10) == []

        on_store(substrate_store_factory, story)

    def test_fifty_concurrent_puts_of_one_relationship_create_it_exactly_once(
        self, substrate_store_factory: Any
    ) -> None:
        a, b = make_substrate(1), make_substrate(2)
        relationship = make_relationship(a, b, "dependency")

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [a, b])
            results = await asyncio.gather(
                *(store.put_relationship(TENANT, relationship) for _ in range(50))
            )
            assert [created for _, created in results].count(True) == 1
            assert all(stored == relationship for stored, _ in results)
            assert await store.count_relationships(TENANT) == {"dependency": 1}

        on_store(substrate_store_factory, story)

    def test_concurrent_deletes_and_relationship_creates_leave_no_dangling_relationship(
        self, substrate_store_factory: Any
    ) -> None:
        """One task relates random substrates while another deletes them (through a second
        store on the same data when the store is persistent, as two workers would).
        Whatever interleaving happens, a refusal names an end that is really gone and no
        relationship outlives an end."""
        factory = _factory(substrate_store_factory)
        substrates = [make_substrate(i) for i in range(40)]
        rng = random.Random(5)
        pairs = [tuple(rng.sample(substrates, 2)) for _ in range(150)]
        doomed = rng.sample(substrates, 25)

        async def main() -> None:
            writer = factory.make()
            await writer.open()
            deleter = factory.make() if factory.persistent else writer
            try:
                if deleter is not writer:
                    await deleter.open()
                await _put_all(writer, TENANT, substrates)
                refusals: list[MissingEnd] = []

                async def relate() -> None:
                    for i, (source, target) in enumerate(pairs):
                        kind = ("dependency", "adjacency", "sibling")[i % 3]
                        relationship = make_relationship(source, target, kind, bidirectional=i % 2)
                        try:
                            await writer.put_relationship(TENANT, relationship)
                        except MissingEnd as refusal:
                            refusals.append(refusal)
                            # Nothing brings a deleted substrate back: it must be absent.
                            assert await writer.get_substrate(TENANT, refusal.identity) is None
                        await asyncio.sleep(0)

                async def delete() -> None:
                    for substrate in doomed:
                        assert await deleter.delete_substrate(TENANT, substrate.identity)
                        await asyncio.sleep(0)

                await asyncio.gather(relate(), delete())
                survivors = {s.identity for s in substrates} - {s.identity for s in doomed}
                assert {r.identity for r in refusals} <= {s.identity for s in doomed}
                for store in {id(writer): writer, id(deleter): deleter}.values():
                    everything = await store.all_relationships(TENANT, limit=1000)
                    for relationship in everything:
                        assert {relationship.source, relationship.target} <= survivors
                    counted = await store.count_relationships(TENANT)
                    assert sum(counted.values()) == len(everything)
                    for identity in survivors:
                        for direction in ("outgoing", "incoming"):
                            listed = await store.list_relationships(
                                TENANT, identity, direction, limit=1000
                            )
                            for relationship in listed:
                                assert {relationship.source, relationship.target} <= survivors
            finally:
                if deleter is not writer:
                    await deleter.close()
                await writer.close()

        asyncio.run(main())

    def test_relationships_written_before_closing_are_there_after_reopening(
        self, substrate_store_factory: Any
    ) -> None:
        factory = _factory(substrate_store_factory)
        if not factory.persistent:
            pytest.skip("the store keeps nothing after it closes (persistent=False)")
        a, b, c = make_substrate(1), make_substrate(2), make_substrate(3)
        kept = make_relationship(a, b, "whole_to_part", weight=1.5, metadata={"k": [1, "v"]})
        deleted = make_relationship(b, c, "part_to_whole")
        cascaded = make_relationship(c, a, "embedding", bidirectional=True)

        async def write(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [a, b, c, kept, deleted, cascaded])
            await store.delete_relationship(TENANT, deleted.identity)
            await store.delete_substrate(TENANT, c.identity)

        async def read(store: SubstrateStore) -> None:
            assert await store.all_relationships(TENANT, limit=10) == [kept]
            assert await store.list_relationships(TENANT, b.identity, "incoming", limit=9) == [kept]
            assert await store.count_relationships(TENANT) == {"whole_to_part": 1}
            assert await store.put_relationship(TENANT, kept) == (kept, False)

        on_store(factory, write)
        on_store(factory, read)

    # -- search ---------------------------------------------------------------------------------
    def test_an_empty_search_lists_every_substrate(self, substrate_store_factory: Any) -> None:
        substrates = [make_substrate(i) for i in range(12)]

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, substrates)
            found = await store.search_substrates(TENANT, SubstrateQuery(), limit=100)
            assert found == sorted(substrates, key=lambda s: s.identity)
            assert await store.search_substrates(OTHER_TENANT, SubstrateQuery(), limit=100) == []

        on_store(substrate_store_factory, story)

    def test_search_by_expression_type_and_literal_code_text(
        self, substrate_store_factory: Any
    ) -> None:
        # A store keeps the type and code it is given; these need not be valid lambdas.
        plain = [make_substrate(i) for i in (1, 2, 10, 11, 21)]
        other_type = make_substrate(3, expression_type="constant", expression_code="42")
        percent = make_substrate(4, expression_code="lambda **kw: kw.get('rate_%', 0) / 100")
        underscore = make_substrate(5, expression_code="lambda **kw: kw.get('a_b', 0)")
        upper = make_substrate(6, expression_code="lambda **kw: kw.get('X', 0)")
        everything = [*plain, other_type, percent, underscore, upper]

        async def found(store: SubstrateStore, **filters: Any) -> set[int]:
            matched = await store.search_substrates(TENANT, SubstrateQuery(**filters), limit=100)
            return set(_ids(matched))

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, everything)
            assert await found(store, expression_type="constant") == {other_type.identity}
            assert await found(store, expression_type="lambda") == set(_ids(everything)) - {
                other_type.identity
            }
            assert await found(store, expression_type="LAMBDA") == set()
            assert await found(store, expression_type="") == set()
            # "* 1" is in the codes of 1, 10 and 11 (not 2 or 21).
            assert await found(store, code_contains="* 1") == _identities(plain[0], *plain[2:4])
            assert await found(store, code_contains="%") == {percent.identity}
            assert await found(store, code_contains="_") == {percent.identity, underscore.identity}
            assert await found(store, code_contains="'X'") == {upper.identity}
            assert await found(store, code_contains="'x'") == set(_ids(plain))
            assert await found(store, code_contains="* ") == set(_ids(plain))
            assert await found(store, code_contains="**kw") == set(_ids(everything)) - {
                other_type.identity
            }
            assert await found(store, code_contains="") == set(_ids(everything))
            assert await found(store, code_contains="no such text") == set()
            # Text no stored code or type can hold finds nothing, and breaks nothing.
            for odd in ("lone \ud800 surrogate", "nul \u0000 char"):
                assert await found(store, code_contains=odd) == set()
                assert await found(store, expression_type=odd) == set()
            assert await found(store, expression_type="constant", code_contains="4") == {
                other_type.identity
            }
            assert await found(store, expression_type="constant", code_contains="kw") == set()

        on_store(substrate_store_factory, story)

    def test_search_by_metadata_compares_values_as_json(self, substrate_store_factory: Any) -> None:
        values: list[JSONValue] = [
            1, True, 1.0, "1", None, 0, False, 0.0, "", -(2**63), -(2**63) - 1, 2**63 + 5,
            2**100, 0.1, 1.5e300, "true", "null", [1, 2], [2, 1], [1.0, 2], [True, 2], [],
            {"a": 1, "b": [2, {"c": None}]}, {"a": True, "b": [2, {"c": None}]}, {},
            {"b": [2, {"c": None}], "a": 1},  # the same object, keys in another order
        ]  # fmt: skip
        twins = {len(values) - 4, len(values) - 1}  # one object, two key orders
        substrates = [make_substrate(i, {"v": value, "i": i}) for i, value in enumerate(values)]
        without_v = make_substrate(len(values), {"i": -1})

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [*substrates, without_v])
            for i, value in enumerate(values):
                matched = await store.search_substrates(
                    TENANT, SubstrateQuery(metadata={"v": value}), limit=100
                )
                same = {s.identity for j, s in enumerate(substrates) if j == i or {i, j} == twins}
                assert set(_ids(matched)) == same, f"metadata v == {value!r}"
            # Several keys must all hold; a key nobody has matches nothing (not even null).
            both = SubstrateQuery(metadata={"v": 1, "i": 0})
            assert _ids(await store.search_substrates(TENANT, both, limit=9)) == [
                substrates[0].identity
            ]
            wrong_pair = SubstrateQuery(metadata={"v": 1, "i": 1})
            assert await store.search_substrates(TENANT, wrong_pair, limit=9) == []
            misses: list[dict[str, JSONValue]] = [
                {"w": None},
                {"v": 2},
                {"v": [1]},
                {"v": {"a": 1}},
            ]
            for missing in misses:
                query = SubstrateQuery(metadata=missing)
                assert await store.search_substrates(TENANT, query, limit=9) == [], missing

        on_store(substrate_store_factory, story)

    def test_search_by_metadata_takes_keys_literally(self, substrate_store_factory: Any) -> None:
        keys = [
            "a.b", 'say "hi"', "[0]", "$", "$.a", "*", "", " ", "key with spaces", "é",
            "🦋", "a'b", "\\", "nul\u0000key", "lone \ud800 surrogate",
        ]  # fmt: skip
        flat = [make_substrate(i, {key: "x"}) for i, key in enumerate(keys)]
        # A nested "a" holding "b" is not the key "a.b"; an array is not "[0]".
        nested = make_substrate(100, {"a": {"b": "x"}, "": ["x"]})
        odd_values = make_substrate(101, {"v": "nul\u0000inside", "w": "lone \udc00 low"})

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [*flat, nested, odd_values])
            for key, substrate in zip(keys, flat, strict=True):
                query = SubstrateQuery(metadata={key: "x"})
                matched = await store.search_substrates(TENANT, query, limit=100)
                assert _ids(matched) == [substrate.identity], f"key {key!r}"
            for value_key, value in odd_values.metadata.items():
                query = SubstrateQuery(metadata={value_key: value})
                matched = await store.search_substrates(TENANT, query, limit=100)
                assert _ids(matched) == [odd_values.identity], f"value {value!r}"
            near_miss = SubstrateQuery(metadata={"v": "nul\u0000"})
            assert await store.search_substrates(TENANT, near_miss, limit=9) == []

        on_store(substrate_store_factory, story)

    def test_search_by_name_prefix_takes_the_prefix_literally(
        self, substrate_store_factory: Any
    ) -> None:
        names: list[JSONValue] = [
            "alpha", "alphabet", "Alpha", "al%pha", "al_pha", "alxpha", "al", "100%",
            "🦋 wings", "nul\u0000name", "lone \ud800 name", 5, None, ["alpha"], {"alpha": 1},
        ]  # fmt: skip
        named = {
            name if isinstance(name, str) else repr(name): make_substrate(i, {"name": name})
            for i, name in enumerate(names)
        }
        nameless = make_substrate(100, {"title": "alpha", "nested": {"name": "alpha"}})

        async def found(store: SubstrateStore, prefix: str) -> set[str]:
            query = SubstrateQuery(name_prefix=prefix)
            matched = set(_ids(await store.search_substrates(TENANT, query, limit=100)))
            return {name for name, s in named.items() if s.identity in matched} | (
                {"nameless"} if nameless.identity in matched else set()
            )

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [*named.values(), nameless])
            strings = {name for name in named if isinstance(_name_of(named[name]), str)}
            assert await found(store, "al") == {
                "alpha", "alphabet", "al%pha", "al_pha", "alxpha", "al"
            }  # fmt: skip
            assert await found(store, "al%") == {"al%pha"}
            assert await found(store, "al_") == {"al_pha"}
            assert await found(store, "Al") == {"Alpha"}
            assert await found(store, "alpha") == {"alpha", "alphabet"}
            assert await found(store, "alphabet!") == set()
            assert await found(store, "100%") == {"100%"}
            assert await found(store, "%") == set()
            assert await found(store, "🦋") == {"🦋 wings"}
            assert await found(store, "nul\u0000") == {"nul\u0000name"}
            assert await found(store, "nul") == {"nul\u0000name"}
            assert await found(store, "lone \ud800") == {"lone \ud800 name"}
            assert await found(store, "") == strings

        on_store(substrate_store_factory, story)

    def test_search_by_creation_time_is_inclusive_after_and_exclusive_before(
        self, substrate_store_factory: Any
    ) -> None:
        moments = {"created": CREATED, "later": LATER, "latest": LATEST, "never": None}
        substrates = {
            name: make_substrate(i, created_at=moment, updated_at=moment)
            for i, (name, moment) in enumerate(moments.items())
        }
        half = timedelta(milliseconds=500)
        paris = timezone(timedelta(hours=2))
        far_west = timezone(timedelta(hours=-12))
        far_east = timezone(timedelta(hours=14))

        async def found(store: SubstrateStore, **bounds: Any) -> set[str]:
            query = SubstrateQuery(**bounds)
            matched = set(_ids(await store.search_substrates(TENANT, query, limit=100)))
            return {name for name, s in substrates.items() if s.identity in matched}

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, substrates.values())
            assert await found(store, created_after=LATER) == {"later", "latest"}
            assert await found(store, created_before=LATER) == {"created"}
            assert await found(store, created_after=LATER, created_before=LATEST) == {"later"}
            assert await found(store, created_after=LATEST, created_before=LATER) == set()
            assert await found(store, created_after=LATER - half) == {"later", "latest"}
            assert await found(store, created_after=LATER + half) == {"latest"}
            assert await found(store, created_before=LATER + half) == {"created", "later"}
            assert await found(store, created_before=LATER - half) == {"created"}
            # The same instant in another zone, and a naive time read as UTC.
            assert await found(store, created_after=LATER.astimezone(paris)) == {
                "later",
                "latest",
            }
            assert await found(store, created_before=LATER.replace(tzinfo=None)) == {"created"}
            # The ends of the calendar: before or after everything, never an error.
            first, last = datetime.min, datetime.max
            everything = {"created", "later", "latest"}
            assert await found(store, created_after=first.replace(tzinfo=far_east)) == everything
            assert await found(store, created_after=first) == everything
            assert await found(store, created_before=first.replace(tzinfo=far_east)) == set()
            assert await found(store, created_before=last.replace(tzinfo=far_west)) == everything
            assert await found(store, created_before=last) == everything
            assert await found(store, created_after=last.replace(tzinfo=UTC)) == set()
            assert await found(store, created_after=last.replace(tzinfo=far_west)) == set()

        on_store(substrate_store_factory, story)

    def test_search_by_relationship_type_finds_both_ends(
        self, substrate_store_factory: Any
    ) -> None:
        a, b, c, d, e = (make_substrate(i) for i in range(1, 6))
        a_b = make_relationship(a, b, "dependency")
        c_d = make_relationship(c, d, "sibling", bidirectional=True)
        e_e = make_relationship(e, e, "recursion")

        async def found(store: SubstrateStore, tenant: str, kind: str) -> set[int]:
            query = SubstrateQuery(has_relationship_type=kind)
            return set(_ids(await store.search_substrates(tenant, query, limit=100)))

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [a, b, c, d, e, a_b, c_d, e_e])
            await _put_all(store, OTHER_TENANT, [a, b, c])
            await store.put_relationship(OTHER_TENANT, make_relationship(a, c, "lineage"))
            assert await found(store, TENANT, "dependency") == _identities(a, b)
            assert await found(store, TENANT, "sibling") == _identities(c, d)
            assert await found(store, TENANT, "recursion") == _identities(e)
            assert await found(store, TENANT, "lineage") == set()
            assert await found(store, TENANT, "DEPENDENCY") == set()  # names come normalised
            assert await found(store, OTHER_TENANT, "lineage") == _identities(a, c)
            assert await found(store, OTHER_TENANT, "dependency") == set()
            await store.delete_relationship(TENANT, a_b.identity)
            assert await found(store, TENANT, "dependency") == set()
            await store.delete_substrate(TENANT, d.identity)
            assert await found(store, TENANT, "sibling") == set()

        on_store(substrate_store_factory, story)

    def test_search_filters_combine_and_page_in_identity_order(
        self, substrate_store_factory: Any
    ) -> None:
        def day(i: int) -> datetime:
            return CREATED + timedelta(days=i)

        substrates = [
            make_substrate(
                i,
                {"group": i % 2, "name": f"{'other' if i % 5 == 0 else 'item'}-{i:02}"},
                created_at=day(i),
                updated_at=day(i),
            )
            for i in range(40)
        ]
        hub = make_substrate(99, {"group": 1, "name": "item-hub"})
        links = [
            make_relationship(hub, substrates[i], "containment")
            for i in range(40)
            if i % 2 == 0 or i % 4 == 1
        ]
        # group 1, named item-..., created on days 12 to 37, and contained by the hub.
        expected = sorted(
            s.identity
            for i, s in enumerate(substrates)
            if i % 2 == 1 and i % 5 != 0 and 12 <= i < 38 and i % 4 == 1
        )
        assert len(expected) == 6  # 13, 17, 21, 29, 33, 37

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [*substrates, hub, *links])
            query = SubstrateQuery(
                metadata={"group": 1},
                name_prefix="item-",
                code_contains="lambda",
                created_after=day(12),
                created_before=day(38),
                has_relationship_type="containment",
                expression_type="lambda",
            )

            async def fetch(after: int | None) -> list[Substrate]:
                return await store.search_substrates(TENANT, query, limit=2, after=after)

            assert await _every_page(fetch, limit=2, most_pages=10) == expected
            # ``after`` need not be a match: the page starts just past it.
            page = await store.search_substrates(TENANT, query, limit=9, after=expected[1] - 1)
            assert _ids(page) == expected[1:]
            for limit, after in ((0, None), (-3, None), (5, 2**64 - 1), (5, expected[-1])):
                assert await store.search_substrates(TENANT, query, limit=limit, after=after) == []
            assert _ids(await store.search_substrates(TENANT, query, limit=9, after=-1)) == expected

        on_store(substrate_store_factory, story)

    def test_a_search_looks_past_many_near_misses_to_the_match(
        self, substrate_store_factory: Any
    ) -> None:
        # Arrays compare element by element, so a store may have to read many candidates
        # of the right kind before it finds the one equal array.
        substrates = [make_substrate(i, {"tags": [i % 300, "t"]}) for i in range(301)]
        wanted = [s.identity for s in substrates if s.metadata["tags"] == [7, "t"]]

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, substrates)
            query = SubstrateQuery(metadata={"tags": [7, "t"]})
            assert len(wanted) == 1
            assert _ids(await store.search_substrates(TENANT, query, limit=1)) == wanted
            assert _ids(await store.search_substrates(TENANT, query, limit=500)) == wanted
            zero = SubstrateQuery(metadata={"tags": [0, "t"]})
            both = sorted(s.identity for s in (substrates[0], substrates[300]))
            assert (
                await _every_page(
                    lambda after: store.search_substrates(TENANT, zero, limit=1, after=after),
                    limit=1,
                    most_pages=5,
                )
                == both
            )

        on_store(substrate_store_factory, story)

    # -- invocation totals across substrates --------------------------------------------------
    def test_invocation_totals_sum_every_substrate_of_the_tenant(
        self, substrate_store_factory: Any
    ) -> None:
        first, second, third = make_substrate(1), make_substrate(2), make_substrate(3)

        async def story(store: SubstrateStore) -> None:
            assert await store.invocation_totals(TENANT) == InvocationStats(0, 0, 0.0, None)
            await _put_all(store, TENANT, [first, second, third])
            await store.put_substrate(OTHER_TENANT, first)
            assert await store.invocation_totals(TENANT) == InvocationStats(0, 0, 0.0, None)
            await store.add_invocations(
                TENANT,
                {
                    first.identity: InvocationStats(3, 1, 4.5, LATER),
                    second.identity: InvocationStats(2, 0, 0.25, LATEST),
                },
            )
            await store.add_invocations(TENANT, {first.identity: InvocationStats(1, 1, 1.0, None)})
            await store.add_invocations(OTHER_TENANT, {first.identity: InvocationStats(9, 9)})
            assert await store.invocation_totals(TENANT) == InvocationStats(6, 2, 5.75, LATEST)
            assert await store.invocation_totals(OTHER_TENANT) == InvocationStats(9, 9, 0.0, None)
            # A deleted substrate's invocations leave the totals with it.
            await store.delete_substrate(TENANT, second.identity)
            assert await store.invocation_totals(TENANT) == InvocationStats(4, 2, 5.5, LATER)
            assert await store.invocation_totals("initech") == InvocationStats()

        on_store(substrate_store_factory, story)


def _identities(*substrates: Substrate) -> set[int]:
    return {s.identity for s in substrates}


def _name_of(substrate: Substrate) -> JSONValue:
    return substrate.metadata.get("name")
