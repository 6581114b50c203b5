"""Batches: ``put_substrates``, ``put_relationships`` and ``get_substrates`` answer like
the one-at-a-time methods, item by item, and a batch lands whole or not at all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from butterflyfx.core.store import MissingEnd, SubstrateStore
from butterflyfx.kernel import Relationship

from .support import (
    EDGE_IDENTITIES,
    LATER,
    OTHER_TENANT,
    TENANT,
    _put_all,
    make_relationship,
    make_substrate,
    on_store,
)


class BatchStories:
    """Part of :class:`~butterflyfx.testing.storage.StoreConformance`."""

    def test_a_batch_of_substrates_answers_each_like_single_puts(
        self, substrate_store_factory: Any
    ) -> None:
        old, new, twice = make_substrate(1), make_substrate(2), make_substrate(3)
        # Same identity as `old`, other metadata: the stored one wins, unchanged.
        old_again = make_substrate(1, {"n": "changed"}, identity=old.identity)

        async def story(store: SubstrateStore) -> None:
            assert await store.put_substrates(TENANT, []) == []
            await store.put_substrate(TENANT, old)
            answers = await store.put_substrates(TENANT, [new, old_again, twice, twice])
            assert answers == [(new, True), (old, False), (twice, True), (twice, False)]
            assert await store.count_substrates(TENANT) == 3
            assert await store.get_substrate(TENANT, old.identity) == old
            assert await store.count_substrates(OTHER_TENANT) == 0

        on_store(substrate_store_factory, story)

    def test_reading_many_substrates_returns_those_present_by_identity(
        self, substrate_store_factory: Any
    ) -> None:
        edges = [make_substrate(100 + n, identity=i) for n, i in enumerate(EDGE_IDENTITIES)]
        ours, theirs = make_substrate(1), make_substrate(2)

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [*edges, ours])
            await store.put_substrate(OTHER_TENANT, theirs)
            wanted = [ours.identity, theirs.identity, 2**64, -1, ours.identity]
            wanted += [s.identity for s in edges]
            found = await store.get_substrates(TENANT, wanted)
            assert found == {s.identity: s for s in [ours, *edges]}
            assert await store.get_substrates(TENANT, []) == {}
            assert await store.get_substrates(OTHER_TENANT, wanted) == {theirs.identity: theirs}

        on_store(substrate_store_factory, story)

    def test_a_batch_of_relationships_answers_each_and_lists_like_single_puts(
        self, substrate_store_factory: Any
    ) -> None:
        a, b, c = make_substrate(1), make_substrate(2), make_substrate(3)
        known = make_relationship(a, b, "dependency", weight=1.5)
        known_again = make_relationship(a, b, "dependency", metadata={"x": 1}, created_at=LATER)
        fresh = [
            make_relationship(b, c, "sibling", bidirectional=True),
            make_relationship(c, c, "recursion"),
            make_relationship(c, a, "lineage", weight=0.5, metadata={"why": "batch"}),
        ]

        async def story(store: SubstrateStore) -> None:
            assert await store.put_relationships(TENANT, []) == []
            await _put_all(store, TENANT, [a, b, c, known])
            answers = await store.put_relationships(
                TENANT, [fresh[0], known_again, fresh[1], fresh[2], fresh[0]]
            )
            assert answers == [
                (fresh[0], True),
                (known, False),
                (fresh[1], True),
                (fresh[2], True),
                (fresh[0], False),
            ]
            assert await store.count_relationships(TENANT) == {
                "dependency": 1,
                "sibling": 1,
                "recursion": 1,
                "lineage": 1,
            }
            for relationship in fresh:
                assert await store.get_relationship(TENANT, relationship.identity) == relationship
            outgoing = await store.list_relationships(TENANT, c.identity, "outgoing", limit=10)
            expected = sorted([fresh[0], fresh[1], fresh[2]], key=lambda r: r.identity)
            assert outgoing == expected  # the bidirectional sibling shows from c too

        on_store(substrate_store_factory, story)

    def test_a_batch_with_a_missing_end_stores_none_of_it(
        self, substrate_store_factory: Any
    ) -> None:
        a, b, absent = make_substrate(1), make_substrate(2), make_substrate(3)
        good = [make_relationship(a, b), make_relationship(b, a, "sibling")]
        cases = [
            ([good[0], make_relationship(a, absent), good[1]], ("target", absent.identity)),
            ([good[0], good[1], make_relationship(absent, a)], ("source", absent.identity)),
            ([good[0], Relationship(2**64, a.identity, "sibling")], ("source", 2**64)),
            # The first bad one in order is named, whichever end it lacks.
            (
                [make_relationship(b, absent), make_relationship(absent, a)],
                ("target", absent.identity),
            ),
        ]

        async def story(store: SubstrateStore) -> None:
            await _put_all(store, TENANT, [a, b])
            await store.put_substrate(OTHER_TENANT, absent)  # another tenant's is not ours
            for batch, expected in cases:
                with pytest.raises(MissingEnd) as caught:
                    await store.put_relationships(TENANT, batch)
                assert (caught.value.end, caught.value.identity) == expected
                assert await store.count_relationships(TENANT) == {}
                for relationship in good:
                    assert await store.get_relationship(TENANT, relationship.identity) is None
            # The store is still usable, and the good ones go in on their own.
            answers = await store.put_relationships(TENANT, good)
            assert answers == [(good[0], True), (good[1], True)]

        on_store(substrate_store_factory, story)

    def test_batches_larger_than_any_parameter_list_land_whole(
        self, substrate_store_factory: Any
    ) -> None:
        substrates = [make_substrate(i) for i in range(2_500)]
        relationships = [
            make_relationship(substrates[i % 2_500], substrates[(i * 7 + 1) % 2_500], "adjacency")
            for i in range(3_000)
        ]
        distinct = {r.identity for r in relationships}

        async def story(store: SubstrateStore) -> None:
            answers = await store.put_substrates(TENANT, substrates)
            assert [created for _, created in answers] == [True] * 2_500
            made = await store.put_relationships(TENANT, relationships)
            assert sum(created for _, created in made) == len(distinct)
            assert await store.count_substrates(TENANT) == 2_500
            assert await store.count_relationships(TENANT) == {"adjacency": len(distinct)}
            found = await store.get_substrates(TENANT, [s.identity for s in substrates])
            assert found == {s.identity: s for s in substrates}

        on_store(substrate_store_factory, story)

    def test_overlapping_batches_at_once_create_each_item_exactly_once(
        self, substrate_store_factory: Any
    ) -> None:
        substrates = [make_substrate(i) for i in range(300)]
        hub = substrates[0]
        relationships = [make_relationship(hub, s, "containment") for s in substrates[1:]]

        async def story(store: SubstrateStore) -> None:
            first, second = await asyncio.gather(
                store.put_substrates(TENANT, substrates[:200]),
                store.put_substrates(TENANT, substrates[100:]),
            )
            created = [s.identity for s, made in [*first, *second] if made]
            assert sorted(created) == sorted(s.identity for s in substrates)
            linked = await asyncio.gather(
                store.put_relationships(TENANT, relationships[:200]),
                store.put_relationships(TENANT, relationships[50:]),
            )
            created = [r.identity for batch in linked for r, made in batch if made]
            assert sorted(created) == sorted(r.identity for r in relationships)
            assert await store.count_relationships(TENANT) == {"containment": 299}

        on_store(substrate_store_factory, story)
