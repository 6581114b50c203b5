"""The substrate service, as the HTTP API uses it, on the in-memory store."""

from __future__ import annotations

import asyncio

import pytest

from butterflyfx.core.events import Event
from butterflyfx.core.problems import ProblemError
from butterflyfx.core.store import StoreUnavailable
from butterflyfx.core.substrates import CompiledCache, SubstrateService, merge_patch
from butterflyfx.kernel import (
    EvaluationError,
    ExpressionRejected,
    compile_expression,
    format_id,
)
from butterflyfx.plugins.storage_memory import MemoryStore

SEED = "lambda **kw: kw.get('x', 0) * kw.get('y', 0)"


def run(story):
    """Run ``story(service, events)`` against a fresh service and return its result."""
    heard: list[Event] = []

    async def emit(event: Event) -> None:
        heard.append(event)

    async def main():
        service = SubstrateService(MemoryStore(), emit, cache_size=8)
        return await story(service, heard)

    return asyncio.run(main())


def test_creating_the_same_expression_twice_gives_the_same_substrate():
    async def story(service, heard):
        first, created = await service.create("default", "lambda", SEED, {"name": "mul"})
        again, created_again = await service.create(
            "default", "lambda", 'lambda **kw: kw.get("x", 0) * kw.get("y", 0)', {"name": "x"}
        )
        return first, created, again, created_again, [e.kind for e in heard]

    first, created, again, created_again, kinds = run(story)
    assert created and not created_again
    assert again == first and again.metadata == {"name": "mul"}
    assert first.substrate_id == "0xE7A2CB9AAF2B6E02"
    assert first.created_at is not None and first.created_at.microsecond == 0
    assert kinds == ["substrate.created"]


def test_a_rejected_expression_is_never_stored():
    async def story(service, heard):
        with pytest.raises(ExpressionRejected):
            await service.create("default", "lambda", "lambda **kw: __import__('os')")
        return (await service.list("default")).items

    assert run(story) == []


def test_listing_pages_through_every_substrate_once_in_a_stable_order():
    async def story(service, heard):
        for i in range(25):
            await service.create("default", "lambda", f"lambda **kw: kw.get('x', 0) + {i}")
        seen, cursor = [], None
        while True:
            page = await service.list("default", limit=10, cursor=cursor)
            seen.extend(s.identity for s in page.items)
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor

    seen = run(story)
    assert len(seen) == 25 and seen == sorted(set(seen))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"cursor": "not-a-cursor"}, "cursor"), ({"limit": 0}, "limit"), ({"limit": 1001}, "limit")],
)
def test_bad_paging_arguments_name_the_field(kwargs, field):
    async def story(service, heard):
        with pytest.raises(ProblemError) as caught:
            await service.list("default", **kwargs)
        return caught.value.problem

    problem = run(story)
    assert (problem.status, problem.extra["field"]) == (400, field)


def test_tenants_do_not_see_each_other():
    async def story(service, heard):
        mine, _ = await service.create("alice", "lambda", SEED)
        with pytest.raises(ProblemError) as caught:
            await service.get("bob", mine.substrate_id)
        theirs, created = await service.create("bob", "lambda", SEED)
        return caught.value.problem.status, created, theirs.identity == mine.identity

    assert run(story) == (404, True, True)


def test_metadata_updates_are_json_merge_patches_that_bump_the_version():
    async def story(service, heard):
        s, _ = await service.create("default", "lambda", SEED, {"name": "mul", "tags": {"a": 1}})
        updated = await service.update_metadata(
            "default", s.substrate_id, {"name": None, "tags": {"b": 2}, "owner": "ken"}
        )
        return updated, [e.kind for e in heard]

    updated, kinds = run(story)
    assert updated.metadata == {"tags": {"a": 1, "b": 2}, "owner": "ken"}
    assert updated.version == 2
    assert kinds == ["substrate.created", "substrate.updated"]


def test_merge_patch_replaces_non_objects():
    assert merge_patch({"a": [1], "b": 1}, {"a": {"x": 1}, "b": [2]}) == {"a": {"x": 1}, "b": [2]}


def test_deleting_removes_the_substrate_and_a_second_delete_is_404():
    async def story(service, heard):
        s, _ = await service.create("default", "lambda", SEED)
        await service.delete("default", s.substrate_id)
        with pytest.raises(ProblemError) as caught:
            await service.delete("default", s.substrate_id)
        with pytest.raises(ProblemError):
            await service.get("default", s.substrate_id)
        return caught.value.problem.status, [e.kind for e in heard]

    assert run(story) == (404, ["substrate.created", "substrate.deleted"])


def test_a_malformed_id_is_a_400_naming_the_field_it_came_in():
    async def story(service, heard):
        with pytest.raises(ProblemError) as raised:
            await service.get("default", "0xZZ")
        assert (raised.value.problem.status, raised.value.problem.extra["field"]) == (
            400,
            "substrate_id",
        )
        first, _ = await service.create("default", "lambda", SEED)
        with pytest.raises(ProblemError) as raised:
            await service.multiply_substrates("default", [first.substrate_id, "0xZZ"])
        assert raised.value.problem.extra["field"] == "substrate_ids[1]"

    run(story)


def test_invoking_counts_into_the_frequency_dimension_before_and_after_a_flush():
    async def story(service, heard):
        s, _ = await service.create("default", "lambda", SEED)
        first = await service.invoke("default", s.substrate_id, {"x": 5, "y": 7})
        await service.invoke("default", s.substrate_id, {"x": 1, "y": 1})
        before = await service.divide("default", s.substrate_id)
        flushed = await service.flush_invocations()
        await service.invoke("default", s.substrate_id, {"x": 2, "y": 2})
        after = await service.divide("default", s.substrate_id)
        return first, before, flushed, after, [e.kind for e in heard]

    first, before, flushed, after, kinds = run(story)
    assert first.result == 35 and first.invocation_time_ms >= 0
    frequency = {d.name: d.content for d in before.dimensions}["Frequency"]
    assert frequency["invocations"] == 2 and frequency["errors"] == 0
    assert flushed == 1
    assert {d.name: d.content for d in after.dimensions}["Frequency"]["invocations"] == 3
    assert kinds.count("substrate.invoked") == 3


def test_counts_a_flush_could_not_write_wait_for_the_next_one():
    async def story(service, heard):
        s, _ = await service.create("default", "lambda", SEED)
        for x in range(3):
            await service.invoke("default", s.substrate_id, {"x": x, "y": 1})
        store = service.store
        written = store.add_invocations

        async def away(tenant, counts):
            raise StoreUnavailable("storage.memory", "connection refused")

        store.add_invocations = away
        with pytest.raises(StoreUnavailable):
            await service.flush_invocations()
        await service.invoke("default", s.substrate_id, {"x": 9, "y": 1})  # meanwhile
        store.add_invocations = written
        flushed = await service.flush_invocations()
        stored = await store.invocation_stats("default", s.identity)
        return flushed, stored.count, await service.flush_invocations()

    assert run(story) == (1, 4, 0)  # none lost, none counted twice


def test_a_failed_invocation_is_counted_as_an_error():
    async def story(service, heard):
        s, _ = await service.create("default", "lambda", "lambda **kw: 1 / kw.get('d', 0)")
        with pytest.raises(EvaluationError):
            await service.invoke("default", s.substrate_id, {})
        stats = await service.invocation_stats("default", s.identity)
        return stats

    stats = run(story)
    assert (stats.count, stats.errors) == (1, 1)


def test_multiplying_dimensions_rebuilds_and_substrates_compose():
    async def story(service, heard):
        a, _ = await service.create("default", "lambda", SEED)
        b, _ = await service.create("default", "lambda", "lambda **kw: kw.get('z', 1)")
        division = await service.divide("default", a.substrate_id)
        rebuilt, rebuilt_created = await service.multiply_dimensions(
            "default", division.to_dict()["dimensions"]
        )
        product, product_created = await service.multiply_substrates(
            "default", [a.substrate_id, b.substrate_id]
        )
        value = await service.invoke("default", product.substrate_id, {"x": 2, "y": 3, "z": 4})
        return a, rebuilt, rebuilt_created, product, product_created, value.result

    a, rebuilt, rebuilt_created, product, product_created, value = run(story)
    assert rebuilt.identity == a.identity and not rebuilt_created
    assert product_created and product.metadata["product_of"][0] == a.substrate_id
    assert value == 24


def test_a_product_with_a_missing_factor_names_which_one():
    async def story(service, heard):
        a, _ = await service.create("default", "lambda", SEED)
        with pytest.raises(ProblemError) as caught:
            await service.multiply_substrates("default", [a.substrate_id, format_id(12345)])
        return caught.value.problem

    problem = run(story)
    assert (problem.status, problem.extra["field"]) == (404, "substrate_ids[1]")


def test_the_compiled_cache_is_a_bounded_lru():
    cache = CompiledCache(2)
    a, b, c = (compile_expression("lambda", f"lambda **kw: {n}") for n in range(3))
    cache.put(a)
    cache.put(b)
    assert cache.get("lambda", a.identity) is a  # a is now the most recent
    cache.put(c)
    assert len(cache) == 2
    assert cache.get("lambda", b.identity) is None
    assert cache.get("lambda", c.identity) is c


def test_a_patch_that_changes_nothing_keeps_the_version_and_fires_no_event():
    async def story(service, heard):
        s, _ = await service.create("default", "lambda", SEED, {"owner": "ada", "n": 1})
        same = await service.update_metadata("default", s.substrate_id, {"owner": "ada"})
        assert same.version == s.version
        assert not [e for e in heard if e.kind == "substrate.updated"]
        changed = await service.update_metadata("default", s.substrate_id, {"n": True})
        assert changed.version == s.version + 1 and changed.metadata["n"] is True

    run(story)
