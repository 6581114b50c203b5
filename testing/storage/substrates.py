"""Substrates: creating, reading, listing, tenants, changes, invocation totals,
concurrency and persistence."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from butterflyfx.core.store import SubstrateStore
from butterflyfx.kernel import InvocationStats, JSONValue, Substrate

from .support import (
    CREATED,
    EDGE_IDENTITIES,
    LATER,
    LATEST,
    OTHER_TENANT,
    TENANT,
    _factory,
    make_substrate,
    on_store,
)


class SubstrateStories:
    """Part of :class:`~butterflyfx.testing.storage.StoreConformance`."""

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
