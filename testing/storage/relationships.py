"""Relationships: both ends must exist, listing by direction and type, and deleting a
substrate takes its relationships with it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from butterflyfx.core.store import Direction, MissingEnd, SubstrateStore
from butterflyfx.kernel import JSONValue, Relationship, Substrate

from .support import (
    EDGE_IDENTITIES,
    LATER,
    LATEST,
    OTHER_TENANT,
    TENANT,
    _every_page,
    _factory,
    _ids,
    _put_all,
    make_relationship,
    make_substrate,
    on_store,
)


class RelationshipStories:
    """Part of :class:`~butterflyfx.testing.storage.StoreConformance`."""

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
