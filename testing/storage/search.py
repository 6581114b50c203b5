"""``search_substrates``: every filter alone and together; invocation totals across substrates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from butterflyfx.core.store import SubstrateQuery, SubstrateStore
from butterflyfx.kernel import InvocationStats, JSONValue, Substrate

from .support import (
    CREATED,
    LATER,
    LATEST,
    OTHER_TENANT,
    TENANT,
    _every_page,
    _ids,
    _put_all,
    make_relationship,
    make_substrate,
    on_store,
)


class SearchStories:
    """Part of :class:`~butterflyfx.testing.storage.StoreConformance`."""

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
